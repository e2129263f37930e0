import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject } from '@nestjs/common';
import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { type DecisionContext, type DomainEvent, fold, notFound, ruleViolation } from '@changeledger/domain';
import {
  ConcurrencyError,
  EVENT_STORE,
  type EventMetadata,
  type EventStore,
  type NewEvent,
  type StreamRevision,
} from '@changeledger/event-store';
import { APP_CONFIG, type AppConfig, CLOCK, type Clock } from '@changeledger/platform';
import { CommandMetrics } from '../metrics/command-metrics';
import { AggregateLoader, dataBytesOf } from './aggregate-loader';
import type { AnyAggregate } from './aggregates';
import {
  ConcurrencyConflictError,
  IdempotencyKeyReusedError,
  PreconditionFailedError,
} from './application-errors';
import { IDEMPOTENCY_TTL_MS } from '../idempotency/idempotency-store.port';
import { type CommandOptions, type CommandResult, ExecuteDecision } from './execute-decision.command';

/**
 * The most one change request (or template) may record, as `dataBytesOf` its events: a command
 * that would take it further is refused (422) and stores nothing. Its read-model documents hold
 * about this much, and MongoDB refuses a document over 16 MiB: past that a projection could never
 * write it, and every read model would stop behind it (BSON takes more room than JSON for some
 * values, hence the margin). Real changes record a few hundred KB at most. The commands that add
 * open-ended content (the aggregate's `openEndedCommands`: steps, issues) stop at
 * MAX_STREAM_DATA_BYTES; the others, which take the change on to its end (amend, verify,
 * complete, review, close, cancel, ...), at STREAM_DATA_CEILING_BYTES, so that a change that reached the
 * first can still be finished.
 */
export const MAX_STREAM_DATA_BYTES = 4 * 1024 * 1024;
export const STREAM_DATA_CEILING_BYTES = 8 * 1024 * 1024;

const mebibytes = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(2)} MiB`;

/** The stream is not there, or ends before where the append expected it to be. */
const isBehind = ({ expected, actual }: ConcurrencyError) =>
  actual === 'no-stream' || (typeof expected === 'bigint' && actual < expected);

/**
 * The answer a command with this request's Idempotency-Key got, if its events are in the
 * stream (from this user, in the last 24 h): folded up to its last event. The same key with
 * another request is refused (409).
 */
export const answerFromStream = async (
  store: EventStore,
  loader: AggregateLoader,
  aggregate: AnyAggregate,
  id: string,
  options: CommandOptions,
  now: Date,
): Promise<CommandResult | undefined> => {
  const recorded = await store.readStream(aggregate.streamId(id));
  const since = now.getTime() - IDEMPOTENCY_TTL_MS;
  const lastIndex = recorded.findLastIndex(
    (e) =>
      e.metadata.idempotencyKey === options.idempotencyKey &&
      e.metadata.actor.id === options.actor.id &&
      Date.parse(e.metadata.occurredAt) > since,
  );
  if (lastIndex < 0) return undefined;
  const stored = recorded[lastIndex].metadata.requestFingerprint;
  // Events recorded before fingerprints were kept carry none: taken as the same request.
  if (stored !== undefined && stored !== options.requestFingerprint) throw new IdempotencyKeyReusedError();
  const upTo = recorded.slice(0, lastIndex + 1);
  const state = loader.fold(aggregate, upTo);
  return {
    id,
    version: aggregate.version(state),
    status: aggregate.status?.(state),
    position: upTo[lastIndex].position,
    replayed: true,
  };
};

/**
 * The one command handler: load the stream, fold, decide, append with the expected version.
 * Without If-Match a lost race is re-run on the new state; with it, the client gets 412.
 */
@CommandHandler(ExecuteDecision)
export class ExecuteDecisionHandler implements ICommandHandler<ExecuteDecision, CommandResult> {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly loader: AggregateLoader,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: CommandMetrics,
  ) {}

  async execute(decision: ExecuteDecision): Promise<CommandResult> {
    const started = performance.now();
    const type = (decision.command as { type: string }).type;
    try {
      const result = await this.decide(decision);
      this.metrics.record(type, (performance.now() - started) / 1000, result);
      return result;
    } catch (error) {
      this.metrics.record(type, (performance.now() - started) / 1000, undefined, error);
      throw error;
    }
  }

  private async decide({ aggregate, id, command, options }: ExecuteDecision): Promise<CommandResult> {
    const definition: AnyAggregate = aggregate;
    const creation = definition.sequence?.isCreation(command) === true;
    if (!creation && id === undefined) throw notFound(`no ${definition.name} id given`);
    for (let attempt = 1; ; attempt++) {
      try {
        return creation
          ? await this.create(definition, command, options)
          : await this.decideAndAppend(definition, id!, command, options);
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
        // A stream found shorter than the state it was decided on (an operator deleted it in
        // EventStoreDB; for a creation, the template it read): the cached state is forgotten, and
        // the re-run folds what is there. Re-run from the cache, every attempt would conflict the
        // same way, then 409. (A creation's own stream found taken is not behind.)
        const behind = isBehind(error);
        if (behind) this.loader.forget(error.streamId);
        // With If-Match the re-run holds the new version against it: 412 unless it is listed (a
        // list may name the version the winner just made), and a repeat of this very request
        // (same key: a client's retry, on another instance) that moved the stream is answered
        // from it. (A creation has no version to match: it is decided again.)
        if (attempt >= this.config.commandMaxAttempts) {
          // The last attempt is not re-run: where the re-run would have answered 412 (If-Match
          // names versions and the stream moved on to one it does not name), so does this. Not
          // with a key (the re-run would first look for this request's own answer), nor for a
          // stream found behind (gone: 404 on a re-run; its revisions no versions).
          const named = options.expectedVersions;
          const now = Number(error.actual) + 1;
          if (!creation && !behind && !options.idempotencyKey && named && !named.includes(now))
            throw new PreconditionFailedError(named, now);
          throw new ConcurrencyConflictError(
            `${creation ? error.streamId : id} kept changing while the command ran (${attempt} attempts); send it again`,
          );
        }
        await sleep(Math.random() * 3 * attempt);
      }
    }
  }

  private async decideAndAppend(
    aggregate: AnyAggregate,
    id: string,
    command: unknown,
    options: CommandOptions,
  ): Promise<CommandResult> {
    const streamId = aggregate.streamId(id);
    const { state, dataBytes } = await this.loader.loadWithDataBytes(aggregate, id);
    const version = aggregate.version(state);
    if (options.idempotencyKey) {
      const replay = await this.previousAnswer(aggregate, id, options);
      if (replay) return replay;
    }
    if (
      options.expectedVersions !== undefined &&
      !options.expectedVersions.includes(version) &&
      version > 0
    ) {
      throw new PreconditionFailedError(options.expectedVersions, version);
    }
    const context = await this.contextFor(aggregate, command, options);
    const events = aggregate.decider.decide(command, state, context);
    const dataBytesAfter = dataBytes + dataBytesOf(events);
    const openEnded = aggregate.openEndedCommands?.has((command as { type: string }).type) === true;
    const limit = openEnded ? MAX_STREAM_DATA_BYTES : STREAM_DATA_CEILING_BYTES;
    if (dataBytesAfter > limit && events.length > 0) {
      throw ruleViolation(
        `${id} would then hold ${mebibytes(dataBytesAfter)} of recorded data, over the ` +
          `${mebibytes(limit)} one record may hold${openEnded ? ' for steps and issues' : ''} ` +
          `(${mebibytes(dataBytes)} now); nothing was stored. ` +
          (openEnded
            ? 'Record further work in a follow-up change, or link to long output instead of pasting it; the change can still be finished'
            : 'Link to long text instead of pasting it'),
        'recorded-data-limit',
      );
    }
    const result = await this.store.append(
      streamId,
      this.toNewEvents(aggregate, events, options, context.now),
      version === 0 ? 'no-stream' : BigInt(version - 1),
    );
    const after = fold(aggregate.decider.evolve, state, events);
    this.loader.remember(streamId, after, aggregate.version(after), dataBytesAfter);
    return {
      id,
      version: aggregate.version(after),
      status: aggregate.status?.(after),
      position: result.position,
    };
  }

  private async create(
    aggregate: AnyAggregate,
    command: unknown,
    options: CommandOptions,
  ): Promise<CommandResult> {
    const sequence = aggregate.sequence!;
    const { decide, initialState, evolve } = aggregate.decider;
    // What the decision reads besides its own stream (a standard change: its template) must
    // not move before the stream is created: a template retired meanwhile is seen on the re-run.
    const reads: StreamRevision[] = [];
    const context = await this.contextFor(aggregate, command, options, reads);
    // Decide once before allocating, so that a refused command consumes no number.
    decide(sequence.withId(command, sequence.format(0)), initialState(), context);
    let events: DomainEvent[] = [];
    const result = await this.store.appendWithSequence({
      sequence: sequence.name,
      unchanged: reads,
      build: (n) => {
        const id = sequence.format(n);
        events = decide(sequence.withId(command, id), initialState(), context);
        return {
          streamId: aggregate.streamId(id),
          events: this.toNewEvents(aggregate, events, options, context.now),
        };
      },
    });
    const after = fold(evolve, initialState(), events);
    this.loader.remember(result.streamId, after, aggregate.version(after), dataBytesOf(events));
    return {
      id: sequence.format(result.number),
      version: aggregate.version(after),
      status: aggregate.status?.(after),
      position: result.position,
    };
  }

  /** `reads`, when given, collects the streams the context loaded, at the revision it folded. */
  private async contextFor(
    aggregate: AnyAggregate,
    command: unknown,
    options: CommandOptions,
    reads?: StreamRevision[],
  ) {
    const base: DecisionContext = { actor: options.actor, now: this.clock.now().toISOString() };
    if (!aggregate.context) return base;
    const load: typeof this.loader.load = async (other, otherId) => {
      const state = await this.loader.load(other, otherId);
      const version = other.version(state);
      reads?.push({
        streamId: other.streamId(otherId),
        revision: version === 0 ? 'no-stream' : BigInt(version - 1),
      });
      return state;
    };
    return aggregate.context(command, base, load);
  }

  /**
   * A command whose Idempotency-Key already appears in the stream (from this user, in the last
   * 24 h) was applied before and its answer lost (a crash, another instance, an expired store
   * row): answer as then instead of applying it twice; the same key with another request is
   * refused (409), as the key store refuses it.
   */
  private previousAnswer(aggregate: AnyAggregate, id: string, options: CommandOptions) {
    return answerFromStream(this.store, this.loader, aggregate, id, options, this.clock.now());
  }

  private toNewEvents(
    aggregate: AnyAggregate,
    events: DomainEvent[],
    options: CommandOptions,
    now: string,
  ): NewEvent[] {
    const causationId = randomUUID();
    const metadata: EventMetadata = {
      actor: { id: options.actor.id, name: options.actor.name, roles: [...options.actor.roles] },
      occurredAt: now,
      correlationId: options.correlationId,
      causationId,
      schemaVersion: aggregate.schemaVersion,
      ...(options.idempotencyKey
        ? { idempotencyKey: options.idempotencyKey, requestFingerprint: options.requestFingerprint }
        : {}),
    };
    return events.map((e) => ({
      eventId: randomUUID(),
      type: e.type,
      data: e.data as Record<string, unknown>,
      metadata,
    }));
  }
}
