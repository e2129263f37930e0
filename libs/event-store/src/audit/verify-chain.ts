import { computeEventHash, GENESIS_HASH } from '../event-hash';
import type { EventStore, RecordedEvent } from '../event-store.port';

export interface ChainBreak {
  readonly streamId: string;
  readonly revision: string;
  readonly position: string;
  readonly reason: string;
}

export interface ChainReport {
  readonly valid: boolean;
  readonly checkedEvents: number;
  readonly checkedStreams: number;
  readonly firstInvalid?: ChainBreak;
}

interface ChainLink {
  readonly revision: bigint;
  readonly hash: string;
}

/** Why `event` does not continue a stream whose last verified event is `last` (undefined: it does). */
export const chainFault = (last: ChainLink | undefined, event: RecordedEvent): string | undefined => {
  const expectedRevision = last ? last.revision + 1n : 0n;
  if (event.revision !== expectedRevision) {
    return `revision ${event.revision} where ${expectedRevision} was due: an event is missing or out of order`;
  }
  const previousHash = last?.hash ?? GENESIS_HASH;
  const stored = event.metadata as { hash?: unknown; previousHash?: unknown };
  if (stored.previousHash !== previousHash)
    return 'previousHash does not match the hash of the previous event';
  if (stored.hash !== computeEventHash(event, previousHash))
    return 'hash does not match the event: its content was changed';
  return undefined;
};

/** The chain check of one stream's events (in revision order), e.g. for an evidence bundle. */
export const verifyStreamChain = (events: readonly RecordedEvent[]): ChainReport => {
  let last: ChainLink | undefined;
  for (const [index, event] of events.entries()) {
    const reason = chainFault(last, event);
    if (reason) {
      return {
        valid: false,
        checkedEvents: index + 1,
        checkedStreams: 1,
        firstInvalid: {
          streamId: event.streamId,
          revision: event.revision.toString(),
          position: event.position.toString(),
          reason,
        },
      };
    }
    last = { revision: event.revision, hash: String(event.metadata.hash) };
  }
  return { valid: true, checkedEvents: events.length, checkedStreams: events.length > 0 ? 1 : 0 };
};

/**
 * Checks every stream's hash chain in one pass over the global log: revisions must follow
 * 0, 1, 2… in log order, each `previousHash` must be the hash of the stream's previous event,
 * and each `hash` must be recomputable from the event. Reports the first break in log order.
 * (Removing a stream's newest events leaves a shorter valid chain: that needs an outside
 * anchor, such as a periodically published head hash.)
 */
export const verifyHashChains = async (
  store: EventStore,
  options: { pageSize?: number; onProgress?: (checked: number, position: bigint, head: bigint) => void } = {},
): Promise<ChainReport> => {
  const pageSize = options.pageSize ?? 5000;
  const head = await store.headPosition();
  const streams = new Map<string, ChainLink>();
  let checked = 0;
  let after = 0n;
  const broken = (event: RecordedEvent, reason: string): ChainReport => ({
    valid: false,
    checkedEvents: checked,
    checkedStreams: streams.size,
    firstInvalid: {
      streamId: event.streamId,
      revision: event.revision.toString(),
      position: event.position.toString(),
      reason,
    },
  });
  for (;;) {
    const page = await store.readAll({ after, limit: pageSize });
    for (const event of page) {
      checked++;
      const last = streams.get(event.streamId);
      const expectedRevision = last ? last.revision + 1n : 0n;
      if (event.revision !== expectedRevision) {
        return broken(
          event,
          `revision ${event.revision} where ${expectedRevision} was due: an event is missing or out of order`,
        );
      }
      const previousHash = last?.hash ?? GENESIS_HASH;
      const stored = event.metadata as { hash?: unknown; previousHash?: unknown };
      if (stored.previousHash !== previousHash) {
        return broken(event, 'previousHash does not match the hash of the previous event');
      }
      if (stored.hash !== computeEventHash(event, previousHash)) {
        return broken(event, 'hash does not match the event: its content was changed');
      }
      streams.set(event.streamId, { revision: event.revision, hash: stored.hash as string });
    }
    if (page.length > 0) {
      after = page[page.length - 1].position;
      options.onProgress?.(checked, after, head);
    }
    if (page.length < pageSize) break;
  }
  return { valid: true, checkedEvents: checked, checkedStreams: streams.size };
};
