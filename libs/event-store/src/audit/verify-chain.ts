import { createHash } from 'node:crypto';
import { computeEventHash, GENESIS_HASH } from '../event-hash';
import { StoredEventCorruptError } from '../event-store.errors';
import type { EventStore, ReadAllOptions, RecordedEvent } from '../event-store.port';

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
  /**
   * Of a valid log: a digest of every event hash up to `position`, in log order. Kept where the
   * data's administrators cannot change it (with a quarter's report, in a ticket), it lets a
   * later verify prove the log up to there unchanged: also its last events and newest streams,
   * which the chains alone cannot vouch for.
   */
  readonly anchor?: LogAnchor;
}

/** `<position>:<digest>` on the command line and in `?anchor=`. */
export interface LogAnchor {
  readonly position: string;
  readonly digest: string;
}

/** Reads `<position>:<sha-256 hex>`; undefined when it is not one. */
export const parseLogAnchor = (text: string): LogAnchor | undefined => {
  const match = /^(\d{1,20}):([0-9a-f]{64})$/.exec(text);
  return match ? { position: BigInt(match[1]).toString(), digest: match[2] } : undefined;
};

/** The running digest of a log: SHA-256 over `<streamId> <revision> <hash>\n` per event, in log order. */
class LogDigest {
  private readonly hasher = createHash('sha256');
  add(event: RecordedEvent) {
    this.hasher.update(`${event.streamId} ${event.revision} ${String(event.metadata.hash)}\n`);
  }
  /** The digest so far (the running one goes on). */
  current(): string {
    return this.hasher.copy().digest('hex');
  }
}

/** SQLite's `readAllDeferred`: events whose data and metadata are parsed when first read. */
interface DeferredReader {
  readAllDeferred(options: ReadAllOptions): Promise<RecordedEvent[]>;
}

/** SQLite's `eventOutsideLog`: a row no read of the log reaches, written around the service. */
interface OutsideLogFinder {
  eventOutsideLog(): Promise<{ streamId: string; revision: bigint; position: bigint } | undefined>;
}

/** EventStoreDB's `hiddenByStreamMetadata`: a delete or truncation its stream reads honour, `$all` not. */
interface HiddenEventsFinder {
  hiddenByStreamMetadata(): Promise<{ streamId: string; position: bigint; metadata: string } | undefined>;
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
  let stored: { hash?: unknown; previousHash?: unknown };
  try {
    stored = event.metadata as { hash?: unknown; previousHash?: unknown };
    void event.data; // a store that parses lazily (SQLite's deferred read) finds a corrupt row here
  } catch (error) {
    if (error instanceof StoredEventCorruptError)
      return `its ${error.field} is not a JSON object: the stored row was edited`;
    throw error;
  }
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
 * Then that the store holds no event outside the log's order (SQLite: a row moved to position 0
 * or below), and that no numbered stream is missing from between others. (Removing a stream's newest
 * events, or the newest stream, leaves a shorter valid log: that needs an outside anchor, the
 * `anchor` of an earlier verify, kept apart from the data.)
 */
export const verifyHashChains = async (
  store: EventStore,
  options: {
    pageSize?: number;
    onProgress?: (checked: number, position: bigint, head: bigint) => void;
    /** An anchor an earlier verify gave: the log up to its position must digest to the same. */
    anchor?: LogAnchor;
  } = {},
): Promise<ChainReport> => {
  const pageSize = options.pageSize ?? 5000;
  // Parsed per event where the store can (SQLite): an edited row that is not JSON is then
  // reported as the break it is, after every earlier event was checked, not as a failed read.
  const deferred = (store as Partial<DeferredReader>).readAllDeferred;
  const read = deferred
    ? (o: ReadAllOptions) => deferred.call(store, o)
    : (o: ReadAllOptions) => store.readAll(o);
  const head = await store.headPosition();
  const streams = new Map<string, ChainLink>();
  const digest = new LogDigest();
  const anchorAt = options.anchor ? BigInt(options.anchor.position) : undefined;
  let anchorChecked = options.anchor === undefined;
  let checked = 0;
  let after = 0n;
  let last: RecordedEvent | undefined;
  const invalid = (firstInvalid: ChainBreak): ChainReport => ({
    valid: false,
    checkedEvents: checked,
    checkedStreams: streams.size,
    firstInvalid,
  });
  const broken = (event: RecordedEvent, reason: string): ChainReport =>
    invalid({
      streamId: event.streamId,
      revision: event.revision.toString(),
      position: event.position.toString(),
      reason,
    });
  /** At the first event past the anchor (or the end of the log): the log up to it is compared. */
  const anchorFault = (): ChainReport | undefined => {
    anchorChecked = true;
    if (digest.current() === options.anchor!.digest) return undefined;
    // No one event can be named: the digest covers them all.
    return invalid({
      streamId: '',
      revision: '',
      position: options.anchor!.position,
      reason:
        `the log up to position ${options.anchor!.position} is not the one the anchor was taken of: ` +
        'events up to there were removed, added or changed (each chain may still hold: removed ' +
        'last events or newest streams, or every later hash recomputed)',
    });
  };
  for (;;) {
    const page = await read({ after, limit: pageSize });
    for (const event of page) {
      if (!anchorChecked && event.position > anchorAt!) {
        const fault = anchorFault();
        if (fault) return fault;
      }
      checked++;
      const reason = chainFault(streams.get(event.streamId), event);
      if (reason) return broken(event, reason);
      streams.set(event.streamId, { revision: event.revision, hash: String(event.metadata.hash) });
      digest.add(event);
      last = event;
    }
    if (page.length > 0) {
      after = page[page.length - 1].position;
      options.onProgress?.(checked, after, head);
    }
    if (page.length < pageSize) break;
    // SQLite reads synchronously: without a turn of the event loop between pages, a long log
    // would hold up the API's other requests (GET /audit/verify) and a CLI's Ctrl-C until the end.
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (!anchorChecked) {
    const fault = anchorFault(); // the log ends at or before the anchor
    if (fault) return fault;
  }
  // An event the pass above cannot see (and no anchor's digest covers), yet the stream's reads,
  // and so its commands and history, take in.
  const outside = await (store as Partial<OutsideLogFinder>).eventOutsideLog?.call(store);
  if (outside) {
    return invalid({
      streamId: outside.streamId,
      revision: outside.revision.toString(),
      position: outside.position.toString(),
      reason:
        'stored at a position no read of the log reaches (0 or below; the service allocates them from 1): ' +
        'written around the service; the stream includes it, the log does not',
    });
  }
  // Events a stream's reads no longer return, while the pass above, over the log, saw them whole.
  const hidden = await (store as Partial<HiddenEventsFinder>).hiddenByStreamMetadata?.call(store);
  if (hidden) {
    return invalid({
      streamId: hidden.streamId,
      revision: '',
      position: hidden.position.toString(),
      reason:
        `metadata written to the stream outside the service (${hidden.metadata}) hides events from its reads ` +
        '(a delete or truncation): its history, as-of and commands no longer see what the log holds',
    });
  }
  const missing = missingNumberedStream(streams.keys());
  if (missing) {
    return invalid({
      streamId: missing,
      revision: '0',
      position: 'none',
      reason:
        'the stream is missing: its number lies between numbers in use, and numbers are allocated ' +
        'without gaps, so it was removed (on EventStoreDB a number whose stream was not written is ' +
        'taken again by the next one; where it could not be, the service logged "is lost (a gap)")',
    });
  }
  return {
    valid: true,
    checkedEvents: checked,
    checkedStreams: streams.size,
    ...(last ? { anchor: { position: last.position.toString(), digest: digest.current() } } : {}),
  };
};

/** A stream named `<category>-<PREFIX>-<number>` (changeRequest-CHG-001, standardTemplate-STD-001). */
const NUMBERED = /^(.+-[A-Z]+-)(\d+)$/;

/**
 * The first stream missing from a family of numbered streams (`appendWithSequence` allocates
 * 1, 2, 3… without gaps): a whole stream removed from between others leaves no broken chain,
 * only a missing number. (The newest stream removed leaves none: that needs an anchor.)
 */
export const missingNumberedStream = (streamIds: Iterable<string>): string | undefined => {
  const families = new Map<string, { numbers: Set<number>; width: number }>();
  for (const id of streamIds) {
    const match = NUMBERED.exec(id);
    if (!match) continue;
    const [, family, digits] = match;
    const entry = families.get(family) ?? { numbers: new Set<number>(), width: digits.length };
    entry.numbers.add(Number(digits));
    entry.width = Math.min(entry.width, digits.length);
    families.set(family, entry);
  }
  for (const [family, { numbers, width }] of [...families].sort(([a], [b]) => a.localeCompare(b))) {
    // a loop, not Math.max(...numbers): spreading some 125,000 numbers overflows the stack
    let highest = 0;
    for (const n of numbers) if (n > highest) highest = n;
    for (let n = 1; n < highest; n++) {
      if (!numbers.has(n)) return `${family}${String(n).padStart(width, '0')}`;
    }
  }
  return undefined;
};
