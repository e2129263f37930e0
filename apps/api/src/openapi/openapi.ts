import type { INestApplication } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import { ModulesContainer } from '@nestjs/core';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type {
  OperationObject,
  ParameterObject,
  ReferenceObject,
  ResponseObject,
  ResponsesObject,
  SchemaObject,
} from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { IS_ISO8601, ValidationTypes } from 'class-validator';
import type { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata';
import { validationMetadatasToSchemas } from 'class-validator-jsonschema';
import type { SchemaConverter } from 'class-validator-jsonschema/build/defaultConverters';
import type { IOptions } from 'class-validator-jsonschema/build/options';
import { REQUEST_TIMEOUT_MS } from '../http/client-error';
import { KEY_PATTERN } from '../idempotency/idempotent-commands';

// The storage is not exported from the package root; its typings live under types/.
const { defaultMetadataStorage } =
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('class-transformer/cjs/storage') as typeof import('class-transformer/types/storage');

/** The security scheme of a feed token in the URL (see the AuthGuard). */
const FEED_TOKEN = 'feedToken';
const SCHEDULE = '/api/v1/schedule';

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
    // calendar clients subscribe to a URL and send no headers: GET /schedule?format=ics only
    .addApiKey(
      {
        type: 'apiKey',
        in: 'query',
        name: 'access_token',
        description:
          'a feed token (claim feed: "schedule", from npm run token -- --feed schedule): GET /api/v1/schedule?format=ics only; any other token in the URL is 401',
      },
      FEED_TOKEN,
    )
    .build();
  const document = SwaggerModule.createDocument(app, config);
  const schemas = validationMetadatasToSchemas({
    classTransformerMetadataStorage: defaultMetadataStorage,
    refPointerPrefix: '#/components/schemas/',
    additionalConverters: CONVERTERS,
  }) as Record<string, SchemaObject>;
  for (const schema of Object.values(schemas)) refsAlone(schema);
  document.components = {
    ...document.components,
    schemas: { ...(document.components?.schemas ?? {}), ...schemas, ...CONTRACT_SCHEMAS, ...READ_SCHEMAS },
  };
  // The validation pipe refuses unknown fields (400), nested objects' too: so do the request
  // schemas, or a client's validator (orval, zod, a mock server) would pass what the API refuses.
  for (const [name, schema] of Object.entries(document.components.schemas ?? {})) {
    const object = schema as SchemaObject;
    if (name.endsWith('Dto') && object.type === 'object' && object.additionalProperties === undefined) {
      object.additionalProperties = false;
    }
  }
  const handlers = handlerArguments(app);
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of ['get', 'post', 'patch'] as const) {
      const operation = item[method];
      if (operation) describeOperation(operation, method, path, handlers, schemas);
    }
  }
  return document;
};

/**
 * Schemas for the validators class-validator-jsonschema cannot read: by default it documents a
 * custom validator by its property's design type, `$ref`s to `Array` or `Object` schemas that do
 * not exist (a document generators refuse). A custom validator adds what it checks, or nothing
 * (the property's type comes from its other decorators).
 */
type ConverterSchema = Exclude<ReturnType<SchemaConverter>, void>;
const CUSTOM_VALIDATORS: Record<string, (meta: ValidationMetadata) => ConverterSchema> = {
  hasText: () => ({ type: 'string', minLength: 1, description: 'text with at least one visible character' }),
  criteriaTexts: (meta) => ({
    type: 'object',
    additionalProperties: { type: 'string', maxLength: Number(meta.constraints?.[0]) },
  }),
  isLogPosition: () => ({ type: 'string', pattern: '^\\d{1,19}$' }),
};

const CONVERTERS: IOptions['additionalConverters'] = {
  [ValidationTypes.CUSTOM_VALIDATION]: (meta) => CUSTOM_VALIDATORS[meta.name ?? '']?.(meta) ?? {},
  // `required` says which fields must be there; OpenAPI 3.0 has no `null` type to refuse with `not`
  [ValidationTypes.IS_DEFINED]: {},
  // a time with its zone: IsTimestamp adds `date-time` where a bare date is refused (see its pattern)
  [IS_ISO8601]: { type: 'string' },
};

/**
 * A nested DTO comes out as `{ $ref, type: 'object' }` (IsObject beside ValidateNested). OpenAPI
 * 3.0 ignores whatever stands beside a `$ref`: the `type` goes, anything else moves into an
 * `allOf` with the `$ref`, where it counts.
 */
const refsAlone = (node: unknown): void => {
  if (Array.isArray(node)) return node.forEach(refsAlone);
  if (!node || typeof node !== 'object') return;
  const record = node as Record<string, unknown>;
  if (typeof record.$ref === 'string') {
    if (record.type === 'object') delete record.type;
    const { $ref, ...rest } = record;
    if (Object.keys(rest).length > 0) {
      for (const key of Object.keys(rest)) delete record[key];
      delete record.$ref;
      Object.assign(record, { allOf: [{ $ref }], ...rest });
    }
    return;
  }
  for (const child of Object.values(record)) refsAlone(child);
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
        ...(status === 503 || status === 409 ? { headers: { 'Retry-After': RETRY_AFTER } } : {}),
        content: { 'application/problem+json': { schema: PROBLEM } },
      },
    ]),
  );
const RETRY_AFTER = {
  description: 'seconds to wait before sending it again (503, and 409 IDEMPOTENCY_KEY_IN_PROGRESS)',
  schema: { type: 'integer' },
};

// ---------------------------------------------------------------------------------------------
// What the reads answer (swagger sees only that they answer 200).

const text = (description?: string): SchemaObject => ({
  type: 'string',
  ...(description ? { description } : {}),
});
const nullableText: SchemaObject = { type: 'string', nullable: true };
const time: SchemaObject = { type: 'string', format: 'date-time' };
const nullableTime: SchemaObject = { ...time, nullable: true };
const person: SchemaObject = {
  type: 'object',
  required: ['id', 'name'],
  properties: { id: text('the user id (the token subject)'), name: text() },
};
/** A read model's item: the fields clients rely on; more may come (additive changes). */
const item = (
  properties: Record<string, SchemaObject>,
  required = Object.keys(properties),
): SchemaObject => ({
  type: 'object',
  required,
  properties,
  additionalProperties: true,
});
const page = (items: SchemaObject | ReferenceObject): SchemaObject => ({
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: {
    items: { type: 'array', items },
    nextCursor: { ...nullableText, description: 'the next page: pass it as `cursor`; null on the last page' },
  },
});
const ref = (name: string): ReferenceObject => ({ $ref: `#/components/schemas/${name}` });

const READ_SCHEMAS: Record<string, SchemaObject> = {
  Change: item(
    {
      id: text(),
      type: { type: 'string', enum: ['standard', 'normal', 'emergency'] },
      status: text(),
      version: { type: 'integer', description: 'the number of events of the change (its ETag)' },
      title: text(),
    },
    ['id', 'type', 'status', 'version'],
  ),
  ChangeSummary: item({
    id: text(),
    title: text(),
    type: { type: 'string', enum: ['standard', 'normal', 'emergency'] },
    status: text(),
    priority: text(),
    riskLevel: nullableText,
    systemsAffected: { type: 'array', items: text() },
    requestedBy: { ...person, nullable: true },
    submittedAt: nullableTime,
    updatedAt: nullableTime,
    version: { type: 'integer' },
  }),
  ChangeLogRow: item({
    date: text('YYYY-MM-DD'),
    changeId: text(),
    description: text(),
    type: text(),
    status: text(),
    implementedBy: text(),
  }),
  PendingApproval: item({
    changeId: text(),
    title: text(),
    riskLevel: nullableText,
    priority: text(),
    requiredApproval: { type: 'string', enum: ['infrastructure-lead', 'management'] },
    requestedBy: person,
    awaitingSince: nullableTime,
    proposedStart: nullableTime,
  }),
  RetrospectiveItem: item(
    {
      changeId: text(),
      title: text(),
      category: text(),
      declaredAt: time,
      implementedAt: time,
      outstanding: {
        type: 'array',
        items: {
          type: 'string',
          enum: ['complete-request', 'post-implementation-review', 'retrospective-approval'],
        },
      },
      dueAt: nullableTime,
      overdue: { type: 'boolean' },
    },
    ['changeId', 'title', 'category', 'declaredAt', 'outstanding', 'dueAt', 'overdue'],
  ),
  StandardTemplate: item(
    {
      id: text(),
      version: {
        type: 'integer',
        description: 'the number of events of the template: what If-Match compares',
      },
      name: text(),
      description: text(),
      procedure: { type: 'array', items: text() },
      systemsScope: { type: 'array', items: text() },
      active: { type: 'boolean' },
      usageCount: { type: 'integer', description: 'standard changes submitted with it' },
      createdBy: person,
      createdAt: time,
      retiredBy: person,
      retiredAt: time,
      retirementReason: text(),
    },
    ['id', 'version', 'name', 'description', 'procedure', 'systemsScope', 'active', 'usageCount'],
  ),
  ScheduleItem: item({
    changeId: text(),
    title: text(),
    type: { type: 'string', enum: ['standard', 'normal', 'emergency'] },
    riskLevel: nullableText,
    status: text(),
    systemsAffected: { type: 'array', items: text() },
    plannedStart: nullableTime,
    plannedEnd: nullableTime,
    maintenanceWindow: { type: 'boolean' },
    startedAt: nullableTime,
    endedAt: nullableTime,
    outcome: { type: 'string', enum: ['successful', 'failed', 'rolled-back'], nullable: true },
    from: { ...time, description: 'the window: from the planned or actual start, whichever came first' },
    until: { ...nullableTime, description: 'to the actual end, else the planned end; null while at work' },
    overrunning: { type: 'boolean', description: 'in progress past its planned end' },
    sequence: { type: 'integer', description: 'grows with every change of the entry (iCalendar SEQUENCE)' },
    conflictsWith: {
      type: 'array',
      description: 'other open changes whose windows overlap on systems both name',
      items: item({
        changeId: text(),
        title: text(),
        status: text(),
        from: time,
        until: nullableTime,
        systems: { type: 'array', items: text() },
      }),
    },
  }),
  Health: item(
    {
      status: { type: 'string', enum: ['ok', 'degraded'] },
      eventStore: { type: 'string', enum: ['up', 'down'] },
      readModels: { type: 'string', enum: ['up', 'down'] },
      projectionLag: {
        type: 'integer',
        nullable: true,
        description: 'log positions the read models are behind',
      },
    },
    ['status', 'eventStore', 'readModels', 'projectionLag'],
  ),
  ChainCheck: item(
    {
      valid: { type: 'boolean' },
      checkedEvents: { type: 'integer' },
      firstInvalid: { type: 'object', additionalProperties: true },
    },
    ['valid', 'checkedEvents'],
  ),
};

const object = (description: string): SchemaObject => ({
  type: 'object',
  description,
  additionalProperties: true,
});
const json = (schema: SchemaObject | { $ref: string }) => ({ 'application/json': { schema } });
/** Answers in these media types, each a text (CSV, Markdown, iCalendar, …). */
const texts = (...mediaTypes: string[]) =>
  Object.fromEntries(mediaTypes.map((type) => [type, { schema: { type: 'string' } }]));
const NEXT_CURSOR = {
  'Next-Cursor': {
    description: 'with limit or cursor on a CSV, Markdown or iCalendar export: the next page’s cursor',
    schema: { type: 'string' },
  },
};

/** Per read path: its 200 answer (media types by `format` or `Accept`). */
const READ_ANSWERS: Record<string, ResponseObject> = {
  '/api/v1/changes': {
    description: 'changes, newest submission first',
    content: json(page(ref('ChangeSummary'))),
  },
  '/api/v1/changes/{id}': {
    description: 'the whole change (see the contract for every field)',
    headers: { ETag: { description: 'its version, "<version>"', schema: { type: 'string' } } },
    content: json(ref('Change')),
  },
  '/api/v1/changes/{id}/history': {
    description: 'every event of the change in order, and the check of its hash chain',
    content: json(object('{ changeId, items, hashChain }')),
  },
  '/api/v1/changes/{id}/as-of': {
    description: 'the change as it stood at `at`',
    content: json(ref('Change')),
  },
  '/api/v1/changes/{id}/evidence': {
    description:
      'format=markdown (the default): the filled-in request template, history and chain check; format=json: the same as JSON',
    content: {
      ...texts('text/markdown'),
      ...json(object('{ generatedAt, change, history, hashChain }')),
    },
  },
  '/api/v1/audit/events': {
    description: 'the global log in order; with Accept: application/x-ndjson, streamed one event per line',
    content: {
      ...json(
        page(
          object(
            'an event: { position, streamId, revision, type, occurredAt, actor, data, hash, previousHash }',
          ),
        ),
      ),
      ...texts('application/x-ndjson'),
    },
  },
  '/api/v1/audit/verify': {
    description: 'the hash chain of every stream checked',
    content: json(ref('ChainCheck')),
  },
  '/api/v1/change-log': {
    description:
      'the change log, newest first: format=json (the default), csv or markdown (the seed’s table)',
    headers: NEXT_CURSOR,
    content: {
      ...json(page(ref('ChangeLogRow'))),
      ...texts('text/csv', 'text/markdown'),
    },
  },
  '/api/v1/approvals/pending': {
    description: 'changes awaiting approval',
    content: json(page(ref('PendingApproval'))),
  },
  '/api/v1/retrospectives/queue': {
    description: 'emergency changes not yet closed',
    content: json(page(ref('RetrospectiveItem'))),
  },
  '/api/v1/follow-ups': {
    description: 'changes waiting for their next step',
    content: json(page(object('a follow-up'))),
  },
  '/api/v1/schedule': {
    description: 'scheduled changes in the range: JSON, or format=ics (iCalendar)',
    headers: NEXT_CURSOR,
    content: { ...json(page(ref('ScheduleItem'))), ...texts('text/calendar') },
  },
  '/api/v1/reports/compliance': {
    description: 'the compliance report: format=json (the default), csv or html',
    content: {
      ...json(object('the report')),
      ...texts('text/csv', 'text/html'),
    },
  },
  '/api/v1/standard-templates': {
    description: 'standard-change templates',
    content: json(page(ref('StandardTemplate'))),
  },
  '/api/v1/standard-templates/{id}': {
    // no ETag: its usage count changes without its version
    description:
      'one standard-change template, as the list shows it (its `version` is what If-Match compares)',
    content: json(ref('StandardTemplate')),
  },
  '/api/v1/health': {
    description: 'the report while the stores are up and this process’s projector, if it runs one, projects',
    content: json(ref('Health')),
  },
  '/api/v1/openapi.json': { description: 'this document', content: json(object('OpenAPI 3.0')) },
  '/api/v1/metrics': {
    description:
      'Prometheus text exposition format 0.0.4; the bearer token is METRICS_TOKEN when the server has one, a user’s otherwise',
    content: texts('text/plain'),
  },
};
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
    // (the feed token in the URL is the feedToken security scheme, not a parameter besides)
    ...parametersOf(handler.query ? schemas[handler.query] : undefined, 'query').filter(
      (p) => !(path === SCHEDULE && p.name === 'access_token'),
    ),
  ];
  const answer = method === 'get' ? READ_ANSWERS[path] : undefined;
  if (path === HEALTH) {
    operation.security = [];
    operation.parameters = parameters;
    operation.responses = {
      '200': answer!,
      // degraded: the same report, with status 503 (a load balancer takes the instance out)
      '503': {
        description:
          'degraded: a store down, or the projector down or stalled in this process (the same report); while the service shuts down, a problem+json',
        content: { ...answer!.content, 'application/problem+json': { schema: PROBLEM } },
      },
    };
    return;
  }
  operation.security = path === SCHEDULE ? [{ bearer: [] }, { [FEED_TOKEN]: [] }] : [{ bearer: [] }];
  if (method === 'get') {
    if (answer?.headers?.ETag) {
      parameters.push({
        name: 'If-None-Match',
        in: 'header',
        required: false,
        description:
          'the version(s) the client holds, as ETag gave them: 304 with no body while it is current',
        schema: { type: 'string', example: '"7"' },
      });
    }
    operation.parameters = parameters;
    operation.responses = {
      ...operation.responses,
      ...(answer ? { '200': answer } : {}),
      ...(answer?.headers?.ETag
        ? { '304': { description: 'not modified: the version named in If-None-Match is current' } }
        : {}),
      ...problemResponses(onOne ? [400, 401, 403, 404, 503] : [400, 401, 403, 503]),
    };
    return;
  }
  // A command.
  parameters.push({
    name: 'Idempotency-Key',
    in: 'header',
    required: false,
    description:
      method === 'patch'
        ? "a repeat with the same key and body within 24 h, once the first has been applied, is answered from the change's events and appends nothing (a refusal is not kept: the repeat is decided again)"
        : 'a repeat with the same key and body within 24 h gets the first answer (a refusal too) and appends nothing',
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
      headers: {
        ETag: { description: 'the new version, "<version>"', schema: { type: 'string' } },
        ...(status === '201'
          ? {
              Location: {
                description: 'where the new resource is read: /api/v1/changes/CHG-001',
                schema: { type: 'string' },
              },
            }
          : {}),
        'Idempotent-Replayed': {
          description: '"true" on the stored answer to a repeat of an Idempotency-Key (nothing appended)',
          schema: { type: 'string', enum: ['true'] },
        },
      },
      content: { 'application/json': { schema: { $ref: '#/components/schemas/CommandResult' } } },
    },
    ...problemResponses(
      onOne
        ? [400, 401, 403, 404, 408, 409, 412, 413, 422, 503]
        : [400, 401, 403, 404, 408, 409, 413, 422, 503],
    ),
  };
};
