import { Inject } from '@nestjs/common';
import { type IQueryHandler, QueryHandler } from '@nestjs/cqrs';
import { EVENT_STORE, type EventStore } from '@changeledger/event-store';
import { CLOCK, type Clock } from '@changeledger/platform';
import {
  type ChangeRequestDocument,
  changeRequestsProjection,
  READ_MODEL_STORE,
  type ReadModelStore,
} from '@changeledger/read-models';
import { ReadPosition } from '../read-models/read-position';
import { AggregateLoader } from './aggregate-loader';
import { IdempotencyKeyReusedError } from './application-errors';
import { type AnyAggregate, changeRequestAggregate } from './aggregates';
import type { CommandOptions, CommandResult } from './execute-decision.command';
import { answerFromStream } from './execute-decision.handler';

/**
 * The user's submissions from a second before the claim on that are looked at, oldest first:
 * the one made under the claim came right after it, so it is among the first unless the user
 * submitted this many in that moment (then "not found": 409, never a second creation).
 */
const CANDIDATES = 50;
/** How much earlier than its claim a submission may say it was made (clocks of one process). */
const CLOCK_MARGIN_MS = 1000;

/**
 * The change request a submission with this Idempotency-Key created, if it did: for a key whose
 * claim its process left pending (it stopped before answering). Found by the key in the events
 * of the user's submissions since the claim, once the read models include every event stored
 * so far (else the answer could be "not created" for one not yet projected: then it throws
 * ProjectionLaggingError, 503, and the same key may be sent again).
 */
export class FindKeyedChangeSubmission {
  constructor(
    readonly options: CommandOptions,
    /** When the key was claimed (ms since the epoch, the service's clock). */
    readonly claimedAt: number,
  ) {}
}

@QueryHandler(FindKeyedChangeSubmission)
export class FindKeyedChangeSubmissionHandler implements IQueryHandler<
  FindKeyedChangeSubmission,
  CommandResult | undefined
> {
  constructor(
    @Inject(EVENT_STORE) private readonly events: EventStore,
    @Inject(READ_MODEL_STORE) private readonly readModels: ReadModelStore,
    private readonly readPosition: ReadPosition,
    private readonly loader: AggregateLoader,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async execute({ options, claimedAt }: FindKeyedChangeSubmission): Promise<CommandResult | undefined> {
    // (read again if a rebuild was swapped in meanwhile: its models may lack the creation, and a
    // "not found" is kept for good)
    const candidates = await this.readPosition.read(await this.events.headPosition(), () =>
      this.readModels.find<ChangeRequestDocument>(changeRequestsProjection.collection.name, {
        where: [
          { field: 'requestedBy', op: 'eq', value: options.actor.id },
          { field: 'submittedAt', op: 'gte', value: new Date(claimedAt - CLOCK_MARGIN_MS).toISOString() },
        ],
        orderBy: { field: 'submittedAt', direction: 'asc' },
        limit: CANDIDATES,
        select: ['submittedAt'],
      }),
    );
    for (const candidate of candidates) {
      try {
        const answer = await answerFromStream(
          this.events,
          this.loader,
          changeRequestAggregate as unknown as AnyAggregate, // as ExecuteDecision holds it
          candidate.id,
          options,
          this.clock.now(),
        );
        if (answer) return answer;
      } catch (error) {
        // the key on a later command of that change with another body (a PATCH): not this one
        if (!(error instanceof IdempotencyKeyReusedError)) throw error;
      }
    }
    return undefined;
  }
}
