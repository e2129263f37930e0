import type { INestApplication } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import { ModulesContainer } from '@nestjs/core';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type {
  OperationObject,
  ParameterObject,
  ResponseObject,
  ResponsesObject,
  SchemaObject,
} from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { validationMetadatasToSchemas } from 'class-validator-jsonschema';
import { REQUEST_TIMEOUT_MS } from '../http/client-error';
import { KEY_PATTERN } from '../idempotency/idempotent-commands';

// The storage is not exported from the package root; its typings live under types/.
const { defaultMetadataStorage } =
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('class-transformer/cjs/storage') as typeof import('class-transformer/types/storage');

/**
 * The OpenAPI document: paths from the controllers; request bodies, path and query parameters
 * from the same class-validator decorators that validate requests (so the two cannot drift
 * apart); the contract's headers, command answers and problem+json errors.
 */
export const buildOpenApiDocument = (app: INestApplication): OpenAPIObject => {
  const config = new DocumentBuilder()
    .setTitle('changeledger')
    .setDescription(
      'Event-sourced change management (HTTP contract v1). Every endpoint but GET /api/v1/health needs a bearer token.',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    .build();
  const document = SwaggerModule.createDocument(app, config);
  const schemas = validationMetadatasToSchemas({
    classTransformerMetadataStorage: defaultMetadataStorage,
    refPointerPrefix: '#/components/schemas/',
  }) as Record<string, SchemaObject>;
  document.components = {
    ...document.components,
    schemas: { ...(document.components?.schemas ?? {}), ...schemas, ...CONTRACT_SCHEMAS },
  };
  const handlers = handlerArguments(app);
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of ['get', 'post', 'patch'] as const) {
      const operation = item[method];
      if (operation) describeOperation(operation, method, path, handlers, schemas);
    }
  }
  return document;
};

const PROBLEM = { $ref: '#/components/schemas/Problem' };
const CONTRACT_SCHEMAS: Record<string, SchemaObject> = {
  Problem: {
    type: 'object',
    description: 'application/problem+json (RFC 9457) with the contract’s stable `code`',
    required: ['type', 'title', 'status', 'detail', 'code'],
    properties: {
      type: { type: 'string' },
      title: { type: 'string' },
      status: { type: 'integer' },
      detail: { type: 'string' },
      code: { type: 'string', example: 'VALIDATION_FAILED' },
      errors: {
        type: 'array',
        description: 'for VALIDATION_FAILED: each field and what is wrong with it',
        items: {
          type: 'object',
          required: ['field', 'message'],
          properties: { field: { type: 'string' }, message: { type: 'string' } },
        },
      },
      rule: { type: 'string', description: 'the process rule that decided (RULE_VIOLATION, FORBIDDEN)' },
    },
  },
  CommandResult: {
    type: 'object',
    required: ['id', 'version', 'status', 'position'],
    properties: {
      id: { type: 'string', example: 'CHG-001' },
      version: { type: 'integer', description: 'the stream version after the command (its ETag)' },
      status: { type: 'string' },
      position: {
        type: 'string',
        pattern: '^\\d+$',
        description: 'global log position of its last event (64-bit, as a decimal string)',
      },
    },
  },
};

/** Each status the contract lets an endpoint of this kind answer with a problem. */
const problemResponses = (statuses: readonly number[]): ResponsesObject =>
  Object.fromEntries(
    statuses.map((status) => [
      String(status),
      {
        description: PROBLEM_DESCRIPTIONS[status],
        content: { 'application/problem+json': { schema: PROBLEM } },
      },
    ]),
  );
const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'VALIDATION_FAILED: malformed JSON, a missing, invalid or unknown field or query parameter',
  401: 'UNAUTHENTICATED: no token, bad signature, expired, wrong issuer or audience',
  403: 'FORBIDDEN (the actor lacks the role) or SEGREGATION_OF_DUTIES',
  404: 'NOT_FOUND: no such change request or template',
  408: `REQUEST_TIMEOUT: the request did not arrive within ${REQUEST_TIMEOUT_MS / 1000} s`,
  409: 'INVALID_STATE, CONCURRENCY_CONFLICT, IDEMPOTENCY_KEY_REUSED, IDEMPOTENCY_KEY_IN_PROGRESS or IDEMPOTENCY_OUTCOME_UNKNOWN',
  412: 'PRECONDITION_FAILED: If-Match names a version that is not the current one',
  413: 'PAYLOAD_TOO_LARGE: a body over 1 MiB, or events of the command over 1,000,000 bytes',
  422: 'RULE_VIOLATION: a process rule forbids it',
  503: 'PROJECTION_LAGGING (minPosition not reached within 5 s) or a store unavailable',
};

interface HandlerArguments {
  readonly path?: string;
  readonly query?: string;
  readonly body?: string;
}

/** Per operationId (`Controller_method`, swagger's default): its @Param, @Query and @Body classes. */
const handlerArguments = (app: INestApplication): Map<string, HandlerArguments> => {
  const found = new Map<string, HandlerArguments>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as (new (...args: never[]) => unknown) | null;
      if (!controller) continue;
      for (const method of Object.getOwnPropertyNames(controller.prototype)) {
        const args = Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, method) as
          Record<string, { index: number; data?: unknown }> | undefined;
        if (!args) continue;
        const types = (Reflect.getMetadata('design:paramtypes', controller.prototype, method) ?? []) as {
          name?: string;
        }[];
        const classes: { -readonly [K in keyof HandlerArguments]: string } = {};
        for (const [key, arg] of Object.entries(args)) {
          if (arg.data !== undefined) continue; // a single named value (a header), not a class
          const kind = Number(key.split(':')[0]);
          const name = types[arg.index]?.name;
          if (kind === RouteParamtypes.PARAM) classes.path = name;
          else if (kind === RouteParamtypes.QUERY) classes.query = name;
          else if (kind === RouteParamtypes.BODY) classes.body = name;
        }
        found.set(`${controller.name}_${method}`, classes);
      }
    }
  }
  return found;
};

const parametersOf = (schema: SchemaObject | undefined, where: 'path' | 'query'): ParameterObject[] =>
  Object.entries(schema?.properties ?? {}).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || (schema?.required ?? []).includes(name),
    schema: property,
  }));

const HEALTH = '/api/v1/health';

const describeOperation = (
  operation: OperationObject,
  method: 'get' | 'post' | 'patch',
  path: string,
  handlers: Map<string, HandlerArguments>,
  schemas: Record<string, SchemaObject>,
) => {
  const handler = handlers.get(operation.operationId ?? '') ?? {};
  const onOne = path.includes('{');
  const parameters: ParameterObject[] = [
    ...parametersOf(handler.path ? schemas[handler.path] : undefined, 'path'),
    ...parametersOf(handler.query ? schemas[handler.query] : undefined, 'query'),
  ];
  if (path === HEALTH) {
    operation.security = [];
    operation.parameters = parameters;
    // degraded: the same report, with status 503 (a load balancer takes the instance out)
    const ok = operation.responses['200'] as ResponseObject | undefined;
    operation.responses = {
      ...operation.responses,
      '503': {
        description:
          'degraded: a store down, or the projector down or stalled in this process (the same report); while the service shuts down, a problem+json',
        ...(ok?.content ? { content: ok.content } : {}),
      },
    };
    return;
  }
  operation.security = [{ bearer: [] }];
  if (method === 'get') {
    operation.parameters = parameters;
    operation.responses = {
      ...operation.responses,
      ...problemResponses(onOne ? [400, 401, 403, 404, 503] : [400, 401, 403, 503]),
    };
    return;
  }
  // A command.
  parameters.push({
    name: 'Idempotency-Key',
    in: 'header',
    required: false,
    description: 'a repeat with the same key and body within 24 h gets the first answer and appends nothing',
    schema: { type: 'string', pattern: KEY_PATTERN.source },
  });
  if (onOne) {
    parameters.push({
      name: 'If-Match',
      in: 'header',
      required: false,
      description: 'the version(s) the command expects, as ETag gives them ("7"); otherwise 412',
      schema: { type: 'string', example: '"7"' },
    });
  }
  operation.parameters = parameters;
  const body = handler.body ? schemas[handler.body] : undefined;
  if (operation.requestBody && 'required' in operation.requestBody) {
    // a body with nothing required may be left out (an empty POST)
    operation.requestBody.required = (body?.required ?? []).length > 0;
  }
  const [status] = Object.keys(operation.responses);
  operation.responses = {
    [status]: {
      description: status === '201' ? 'created' : 'done',
      headers: { ETag: { description: 'the new version, "<version>"', schema: { type: 'string' } } },
      content: { 'application/json': { schema: { $ref: '#/components/schemas/CommandResult' } } },
    },
    ...problemResponses(
      onOne
        ? [400, 401, 403, 404, 408, 409, 412, 413, 422, 503]
        : [400, 401, 403, 404, 408, 409, 413, 422, 503],
    ),
  };
};
