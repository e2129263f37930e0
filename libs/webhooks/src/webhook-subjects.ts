import {
  type ChangeRequestEvent,
  type ChangeRequestState,
  type ChangeStatus,
  type ChangeType,
  CHANGE_REQUEST_STREAM_PREFIX,
  evolveChangeRequest,
  evolveStandardTemplate,
  initialChangeRequestState,
  initialStandardTemplateState,
  type RiskLevel,
  type StandardTemplateEvent,
  type StandardTemplateState,
  STANDARD_TEMPLATE_STREAM_PREFIX,
} from '@changeledger/domain';
import { type EventStore, type RecordedEvent, StoredEventCorruptError } from '@changeledger/event-store';

/** What a change request was right after an event: enough for a chat message without a lookup. */
export interface ChangeSubject {
  readonly kind: 'change-request';
  /** `CHG-001`: what `GET /api/v1/changes/:id` shows in full. */
  readonly id: string;
  readonly title: string;
  readonly changeType: ChangeType;
  readonly status: ChangeStatus;
  readonly riskLevel: RiskLevel | null;
  /** The change's version after the event (its ETag then). */
  readonly version: number;
}

export interface TemplateSubject {
  readonly kind: 'standard-template';
  /** `STD-001`. */
  readonly id: string;
  readonly name: string;
  readonly active: boolean;
  readonly version: number;
}

/**
 * What the event is about. Only `kind` and `id` when its stream could not be folded (a history
 * the domain never writes, or an earlier event that no longer parses: an edited store), so that
 * a delivery is never held up by it (`npm run audit:verify` names the edit).
 */
export type WebhookSubject =
  | ChangeSubject
  | TemplateSubject
  | { readonly kind: 'change-request' | 'standard-template'; readonly id: string };

type State =
  { kind: 'change'; state: ChangeRequestState } | { kind: 'template'; state: StandardTemplateState };

/** Folded states kept between deliveries: a change's events come one after another, in order. */
const KEPT = 256;

const evolve = (folded: State, event: { type: string; data: Record<string, unknown> }): State =>
  folded.kind === 'change'
    ? { kind: 'change', state: evolveChangeRequest(folded.state, event as unknown as ChangeRequestEvent) }
    : {
        kind: 'template',
        state: evolveStandardTemplate(folded.state, event as unknown as StandardTemplateEvent),
      };

/**
 * The subject of each delivered event as it stood right after it, folded from the log with the
 * domain's own `evolve` (so it is what `GET /changes/:id?…` showed then, not what the read models
 * say now). Deliveries come in log order, so each is one `evolve` on the state kept from the
 * stream's previous event, or (events left out by WEBHOOK_EVENTS) a fold of those read after it;
 * otherwise (a restart, a stream not seen for a while) the stream is read up to the event.
 */
export class WebhookSubjects {
  private readonly kept = new Map<string, { revision: bigint; folded: State }>();

  constructor(private readonly events: EventStore) {}

  async after(event: RecordedEvent): Promise<WebhookSubject> {
    let folded: State;
    let subject: WebhookSubject;
    try {
      folded = await this.foldedAfter(event);
      subject = subjectOf(event.streamId, folded);
    } catch (error) {
      // anything else is the store's (unreachable, say): retried as any read of the log
      if (!(error instanceof TypeError || error instanceof StoredEventCorruptError)) throw error;
      // evolve met data it cannot read, or the stream holds a row that does not parse: name the
      // subject, and fold it afresh next time
      this.kept.delete(event.streamId);
      return namedBy(event.streamId);
    }
    const kept = this.kept;
    kept.delete(event.streamId);
    kept.set(event.streamId, { revision: event.revision, folded });
    if (kept.size > KEPT) kept.delete(kept.keys().next().value as string);
    return subject;
  }

  private async foldedAfter(event: RecordedEvent): Promise<State> {
    const previous = this.kept.get(event.streamId);
    if (previous && previous.revision === event.revision - 1n) return evolve(previous.folded, event);
    if (previous && previous.revision < event.revision) {
      // events not delivered since (WEBHOOK_EVENTS leaves them out): folded on from the state
      // kept, not the whole stream again for each delivery
      const after = previous.revision + 1n;
      const since = (await this.events.readStream(event.streamId, { fromRevision: after })).filter(
        (e) => e.revision <= event.revision,
      );
      if (since[0]?.revision === after && since.at(-1)?.revision === event.revision) {
        return since.reduce(evolve, previous.folded);
      }
    }
    const initial: State =
      namedBy(event.streamId).kind === 'standard-template'
        ? { kind: 'template', state: initialStandardTemplateState() }
        : { kind: 'change', state: initialChangeRequestState() };
    const stream = await this.events.readStream(event.streamId);
    return stream.filter((e) => e.revision <= event.revision).reduce(evolve, initial);
  }
}

/** Kind and id, from the stream's name. */
const namedBy = (streamId: string) =>
  streamId.startsWith(STANDARD_TEMPLATE_STREAM_PREFIX)
    ? { kind: 'standard-template' as const, id: streamId.slice(STANDARD_TEMPLATE_STREAM_PREFIX.length) }
    : { kind: 'change-request' as const, id: streamId.slice(CHANGE_REQUEST_STREAM_PREFIX.length) };

const subjectOf = (streamId: string, folded: State): WebhookSubject => {
  const { id } = namedBy(streamId);
  if (folded.kind === 'template') {
    const { name, active, version } = folded.state;
    return { kind: 'standard-template', id, name, active, version };
  }
  const { request, type, status, version } = folded.state;
  return {
    kind: 'change-request',
    id,
    title: request.title,
    changeType: type,
    status,
    riskLevel: request.risk?.level ?? null,
    version,
  };
};
