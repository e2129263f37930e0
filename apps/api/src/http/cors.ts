import type { FastifyReply, FastifyRequest } from 'fastify';

/** The answer headers a page on a CORS origin may read: those a client acts on. */
export const CORS_EXPOSED_HEADERS = [
  'ETag',
  'Location',
  'Allow',
  'Retry-After',
  'Content-Disposition',
  'Idempotent-Replayed',
  'Next-Cursor',
  'WWW-Authenticate',
] as const;

/**
 * The options of Nest's `enableCors` for CORS_ORIGINS: a page may call the API with a bearer
 * token (no cookies: credentials are not allowed) and read the headers a client acts on. An
 * OPTIONS that is no preflight is left to the routes (404, or 405 with `Allow`), not refused as
 * a bad preflight.
 */
export const corsOptions = (origins: readonly string[]) => {
  const cors = {
    origin: origins.includes('*') ? '*' : [...origins],
    methods: ['GET', 'HEAD', 'POST', 'PATCH'],
    allowedHeaders: [
      'Authorization',
      'Content-Type',
      'Accept',
      'If-Match',
      'If-None-Match',
      'Idempotency-Key',
    ],
    exposedHeaders: [...CORS_EXPOSED_HEADERS],
    maxAge: 600,
  };
  return {
    delegator: (
      request: { method: string; headers: Record<string, string | string[] | undefined> },
      callback: (error: Error | null, options: typeof cors | { origin: false }) => void,
    ) =>
      callback(
        null,
        request.method === 'OPTIONS' && request.headers['access-control-request-method'] === undefined
          ? { origin: false }
          : cors,
      ),
  };
};

/**
 * CORS headers on an answer the router itself gives (a URL it cannot read), before any hook
 * runs, CORS's among them: a listed origin's page reads it as it reads every other error.
 */
export const corsOnRouterError = (
  origins: readonly string[],
  request: FastifyRequest,
  reply: FastifyReply,
): void => {
  const origin = request.headers.origin;
  if (origin === undefined || origins.length === 0) return;
  const any = origins.includes('*');
  if (!any && !origins.includes(origin)) return;
  void reply.header('access-control-allow-origin', any ? '*' : origin);
  void reply.header('access-control-expose-headers', CORS_EXPOSED_HEADERS.join(', '));
  if (!any) void reply.header('vary', 'Origin');
};
