import { randomUUID } from 'node:crypto';
import { Logger, type LogLevel, MethodNotAllowedException, NotFoundException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { AppConfig } from '@changeledger/platform';
import { AppModule, type AppModuleOptions } from './app.module';
import { RequestValidationError, ServiceShuttingDownError } from './application/application-errors';
import { type AuthenticatedRequest, authenticate } from './auth/auth.guard';
import { JWT_VERIFIER, type JwtVerifier } from './auth/jwt-verifier';
import { bodyShapeProblem } from './http/body-shape';
import { ifNoneMatchHolds } from './http/conditional-get';
import { corsOnRouterError, corsOptions } from './http/cors';
import { answerClientError, REQUEST_TIMEOUT_MS } from './http/client-error';
import { problem } from './http/problem-details.filter';
import { RouteMethods } from './http/route-methods';
import { buildOpenApiDocument } from './openapi/openapi';
import { OPENAPI_DOCUMENT, type OpenApiDocumentHolder } from './openapi/openapi.controller';

export const API_PREFIX = 'api/v1';

/**
 * Reads whose body changes without the resource's version: no `ETag: "<version>"`, or a client's
 * `If-None-Match` would get 304 for a stale body (a template's usage count grows with changes
 * submitted under it; its version, what If-Match compares, only with its own events).
 */
const VERSION_IS_NOT_THE_BODY = new Set([`/${API_PREFIX}/standard-templates/:id`]);
export const BODY_LIMIT_BYTES = 1024 * 1024;

// Nest's own start-up chatter (one line per route) is 'log'; ours is printed by main.ts.
const LEVELS: Record<AppConfig['logLevel'], LogLevel[]> = {
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  log: ['fatal', 'error', 'warn'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
};

const UNREADABLE_URL = 'the URL is not valid: each % must start a %XX escape of UTF-8';

const isJson = (contentType: string | undefined) =>
  /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(contentType ?? '');

/** Builds the HTTP application (used by main.ts, the e2e tests and the benchmark). */
export const createApp = async (
  config: AppConfig,
  options: Omit<AppModuleOptions, 'config'> = {},
): Promise<NestFastifyApplication> => {
  // Shutting down (see preClose below): a request that still arrives, on a connection busy when
  // the server stopped accepting, is sent elsewhere at once (503, Connection: close).
  let closing = false;
  /** What every answer carries: the onSend hook's, and the router's own errors' (no hook runs for those). */
  const answerHeaders = (reply: FastifyReply) => {
    if (closing) void reply.header('connection', 'close');
    // every answer is the type it says (an evidence file, a CSV or a report is not sniffed into a page)
    void reply.header('x-content-type-options', 'nosniff');
    // What a change request says is not kept by browsers or proxies unless a route says otherwise
    // (a versioned resource: see the onSend hook).
    if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store');
  };
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    // A request's headers and body must arrive within a minute: Fastify's default (0) turns off
    // Node's own limit, so a client trickling a body could hold a connection for as long as it
    // liked. (Answers are not limited: an NDJSON export streams for as long as it takes.)
    requestTimeout: REQUEST_TIMEOUT_MS,
    clientErrorHandler: answerClientError,
    genReqId: () => randomUUID(),
    // answered by the onRequest hook below instead, as problem+json like every other error
    return503OnClosing: false,
    // A URL the router cannot read (a `%` that starts no UTF-8 escape; a path segment, an id,
    // over 100 characters) is answered before any hook runs: as problem+json here, not as
    // Fastify's own JSON.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      const answer =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? problem('NOT_FOUND', 'nothing is found under a path segment longer than 100 characters')
          : problem('VALIDATION_FAILED', UNREADABLE_URL);
      answerHeaders(reply);
      corsOnRouterError(config.corsOrigins, request, reply);
      void reply
        .code(answer.status)
        .header('content-type', 'application/problem+json')
        .send(JSON.stringify(answer));
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.register({ config, ...options }),
    adapter,
    { logger: LEVELS[config.logLevel], bufferLogs: false },
  );
  app.setGlobalPrefix(API_PREFIX);
  // Any answer that carries a single resource's `version` also carries `ETag: "<version>"`; not
  // a change as it stood at a past moment (`asOf`): its version may be gone, and If-Match with
  // it could only fail.
  const fastify = app.getHttpAdapter().getInstance();
  // (routes are registered by app.init() below: the hook sees every one; not CORS's catch-all
  // OPTIONS route, or every path would seem to take a method)
  const routeMethods = new RouteMethods();
  fastify.addHook('onRoute', (route) => {
    if (route.method !== 'OPTIONS') routeMethods.add(route.method, route.url);
  });
  // a frontend served from another origin (see http/cors.ts)
  if (config.corsOrigins.length > 0) app.enableCors(corsOptions(config.corsOrigins));
  // A creation (201) names what it made in `Location` (RFC 9110: without it, a 201's resource
  // is taken to be the request's URI), its replays too.
  fastify.addHook('preSerialization', async (request, reply, payload) => {
    const answer = payload as { id?: unknown; version?: unknown; asOf?: unknown } | null;
    if (
      typeof answer?.version === 'number' &&
      answer.asOf === undefined &&
      reply.statusCode < 300 &&
      !VERSION_IS_NOT_THE_BODY.has(request.routeOptions.url ?? '')
    ) {
      void reply.header('ETag', `"${answer.version}"`);
    }
    if (reply.statusCode === 201 && typeof answer?.id === 'string') {
      void reply.header('Location', `${request.routeOptions.url}/${encodeURIComponent(answer.id)}`);
    }
    return payload;
  });
  // Every route that takes a body is a command, and every command needs a token: a client
  // without a valid one gets 401 before its body is read (not a 400 or 413 about the body), and
  // costs no parsing; the connection is closed after it, or Node would read and drop whatever
  // body the client goes on sending. Reads are authenticated by AuthGuard, which knows the public
  // ones (a public route with a body would need an exemption here: there is none).
  const verifier = app.get<JwtVerifier>(JWT_VERIFIER);
  // (a callback hook: reads, health among them, pass through without a promise)
  fastify.addHook('onRequest', (request, reply, done) => {
    if (closing) return done(new ServiceShuttingDownError());
    const method = request.method;
    // No such route: 404, or 405 with `Allow` when the path takes other methods; before a body
    // is read, token or not (and a body on its way is not drained: the connection is closed).
    // (An OPTIONS that reached CORS's catch-all route is no preflight: no route either.)
    const route = request.routeOptions.url;
    if (!route || (method === 'OPTIONS' && route.endsWith('*'))) {
      const body =
        request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length']) > 0;
      if (body) void reply.header('connection', 'close');
      const path = request.url.split('?')[0];
      const allowed = routeMethods.allowedAt(request.url);
      // as the router answers a URL it cannot read for a method it has routes for
      if (allowed === 'unreadable') return done(new RequestValidationError(UNREADABLE_URL));
      if (allowed.length === 0) return done(new NotFoundException(`Cannot ${method} ${path}`));
      void reply.header('allow', allowed.join(', '));
      return done(
        new MethodNotAllowedException(`${path} does not take ${method}; it takes ${allowed.join(', ')}`),
      );
    }
    if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return done();
    // A request without a body has no media type, whatever its Content-Type says: generated
    // clients set `Content-Type: application/json` on every call of an operation whose body is
    // optional (approve, start, close), body or not; `curl -d ''` sends an empty form; and
    // `curl -X POST -H 'content-type: …'` sends no length at all (no length and no chunks: no
    // body, in HTTP/1.1). Without a type Fastify reads no body. (An empty chunked body is a
    // body: the JSON parser refuses it, with a hint to send {}.)
    const length = request.headers['content-length'];
    if ((length === '0' || length === undefined) && request.headers['transfer-encoding'] === undefined) {
      delete request.headers['content-type'];
    }
    authenticate(request.headers.authorization, verifier).then(
      (actor) => {
        (request as AuthenticatedRequest).actor = actor;
        done();
      },
      (error: Error) => {
        void reply.header('connection', 'close');
        done(error);
      },
    );
  });
  fastify.addHook('preValidation', async (request) => {
    // Nest registers a form parser beside the JSON one: a form body must not pass for a command
    // (an empty one never gets here as a body: see onRequest).
    if (request.body !== undefined && !isJson(request.headers['content-type'])) {
      throw new RequestValidationError('send the body as application/json');
    }
    const shapeProblem = bodyShapeProblem(request.body);
    if (shapeProblem) throw new RequestValidationError(shapeProblem);
  });
  // Shutting down: a request still in flight (a read waiting for minPosition) is answered with
  // `Connection: close`, or the client's keep-alive connection, idle after it, would hold the
  // server's close (and the process) for as long as the client keeps it. Node's close() ends
  // only the connections idle at that moment; an answer whose headers left before (kept alive:
  // an export streaming) ends its connection once it is all sent (onResponse); whatever is
  // still open when the drain is over (an export to a client that stopped reading, a connection
  // that never sent a request) is cut then.
  fastify.addHook('preClose', (done) => {
    closing = true;
    const server = fastify.server;
    const drained = setTimeout(() => {
      new Logger('changeledger').warn(
        `connections still open ${config.shutdownDrainMs} ms after the server stopped accepting (SHUTDOWN_DRAIN_MS): closed`,
      );
      server.closeAllConnections();
    }, config.shutdownDrainMs).unref();
    server.once('close', () => clearTimeout(drained));
    done();
  });
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const etag = reply.getHeader('etag');
    if (typeof etag === 'string' && (request.method === 'GET' || request.method === 'HEAD')) {
      // A versioned resource may be kept by the client alone (private) and asked for again with
      // If-None-Match: unchanged, it is 304 without a body (a frontend polling a change's page).
      if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'private, no-cache');
      if (reply.statusCode === 200 && ifNoneMatchHolds(request.headers['if-none-match'], etag)) {
        answerHeaders(reply);
        void reply.code(304);
        reply.removeHeader('content-type');
        reply.removeHeader('content-length');
        // HEAD's own onSend (Fastify's, after this one) needs the payload: it sends none anyway
        return done(null, request.method === 'HEAD' ? payload : null);
      }
    }
    answerHeaders(reply);
    done(null, payload);
  });
  fastify.addHook('onResponse', (request, _reply, done) => {
    if (closing) {
      // ('finish': all of it handed to the system.) Ended once no answer of a request already
      // read from it is queued next (Node gives the socket to that answer in this same turn).
      const socket = request.raw.socket as (typeof request.raw.socket & { _httpMessage?: unknown }) | null;
      setImmediate(() => {
        if (socket && !socket.destroyed && !socket._httpMessage) socket.end();
      });
    }
    done();
  });
  await app.init();
  app.get<OpenApiDocumentHolder>(OPENAPI_DOCUMENT).document = buildOpenApiDocument(app);
  new Logger('changeledger').debug(`event store: ${config.eventStore}, data dir: ${config.dataDir}`);
  return app;
};
