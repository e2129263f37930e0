import { type ExpectedRevision, MAX_APPEND_BYTES } from './event-store.port';

/** The stream moved on: the expected revision was not the actual one. */
export class ConcurrencyError extends Error {
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedRevision,
    readonly actual: bigint | 'no-stream',
  ) {
    super(
      `stream ${streamId}: expected ${typeof expected === 'bigint' ? `revision ${expected}` : expected}, ` +
        `but it is at ${typeof actual === 'bigint' ? `revision ${actual}` : actual}`,
    );
    this.name = 'ConcurrencyError';
  }
}

/** The store cannot be reached or answered with a fault that a retry might cure. */
export class EventStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventStoreUnavailableError';
  }
}

/**
 * An append whose outcome is unknown: sent, but the store could not be asked whether it was
 * written (it became unreachable). A caller that cannot find out from the stream itself (a new
 * stream whose id it does not know yet) must not simply try again.
 */
export class AppendOutcomeUnknownError extends EventStoreUnavailableError {
  constructor(
    readonly streamId: string,
    options?: { cause?: unknown },
  ) {
    super(`whether ${streamId} was written is unknown: the event store became unreachable`, options);
    this.name = 'AppendOutcomeUnknownError';
  }
}

/** An append larger than the store takes (MAX_APPEND_BYTES, or a server's lower limit): nothing was written. */
export class AppendTooLargeError extends Error {
  constructor(
    readonly streamId: string,
    /** The append's size as measured, if the store measured it (a server's refusal does not say). */
    readonly bytes: number | undefined,
    readonly limit: number = MAX_APPEND_BYTES,
  ) {
    super(`the events for ${streamId} would take ${AppendTooLargeError.sizeText(bytes, limit)}`);
    this.name = 'AppendTooLargeError';
  }

  /** How large, against what limit: `1200000 bytes, over the 1000000 bytes the event store takes at once`. */
  get size(): string {
    return AppendTooLargeError.sizeText(this.bytes, this.limit);
  }

  private static sizeText(bytes: number | undefined, limit: number): string {
    return `${bytes === undefined ? 'more than' : `${bytes} bytes, over`} the ${limit} bytes the event store takes at once`;
  }
}

/**
 * UTF-8 bytes of an append's stored texts (each event's type, data and metadata), or undefined
 * when they are certainly within `limit`: counted exactly only when their length could exceed it
 * (a UTF-16 unit is at most 3 bytes), since this runs for every append.
 */
export const appendBytesOver = (texts: readonly string[], limit = MAX_APPEND_BYTES): number | undefined => {
  let units = 0;
  for (const text of texts) units += text.length;
  if (units * 3 <= limit) return undefined;
  let bytes = 0;
  for (const text of texts) bytes += Buffer.byteLength(text, 'utf8');
  return bytes > limit ? bytes : undefined;
};

export const revisionToString = (r: ExpectedRevision) => (typeof r === 'bigint' ? r.toString() : r);

/**
 * A stored event that cannot be read back as an event: its data or metadata is not the JSON it
 * was written as (someone edited the store's file). Names the event, so that `verify` can report
 * it as the chain's break and an operator can find it.
 */
export class StoredEventCorruptError extends Error {
  constructor(
    readonly streamId: string,
    readonly revision: bigint,
    readonly position: bigint,
    readonly field: 'data' | 'metadata',
    options: {
      cause?: unknown;
      /** What is wrong with it, if not that it is no JSON object. */ problem?: string;
    } = {},
  ) {
    super(
      `the stored event ${streamId} revision ${revision} (position ${position}) is corrupt: its ${field} ` +
        `${options.problem ?? 'is not a JSON object'} (the store was edited outside the service)`,
      { cause: options.cause },
    );
    this.name = 'StoredEventCorruptError';
  }
}
