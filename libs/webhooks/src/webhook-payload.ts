import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  CHANGE_REQUEST_EVENT_TYPES,
  CHANGE_REQUEST_STREAM_PREFIX,
  STANDARD_TEMPLATE_STREAM_PREFIX,
  type StandardTemplateEvent,
} from '@changeledger/domain';
import { type AuditEvent, type RecordedEvent, toAuditEvent } from '@changeledger/event-store';
import type { WebhookSubject } from './webhook-subjects';

const TEMPLATE_EVENT_TYPES: readonly StandardTemplateEvent['type'][] = [
  'StandardTemplateCreated',
  'StandardTemplateRetired',
];

/** Every event type a webhook may be limited to (`WEBHOOK_EVENTS`). */
export const WEBHOOK_EVENT_TYPES: readonly string[] = [
  ...CHANGE_REQUEST_EVENT_TYPES,
  ...TEMPLATE_EVENT_TYPES,
];

/** The streams whose events are delivered: the two aggregates' (not the id counters'). */
export const WEBHOOK_STREAM_PREFIXES: readonly string[] = [
  CHANGE_REQUEST_STREAM_PREFIX,
  STANDARD_TEMPLATE_STREAM_PREFIX,
];

/**
 * One delivery's body: the event exactly as `GET /api/v1/audit/events` shows it, and what it is
 * about as it stood right after it (`WebhookSubjects`).
 */
export type WebhookPayload = AuditEvent & { readonly subject: WebhookSubject };

export const toWebhookPayload = (event: RecordedEvent, subject: WebhookSubject): WebhookPayload => ({
  ...toAuditEvent(event),
  subject,
});

/**
 * The header a receiver checks: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, with a
 * second `v1` while a secret is being replaced (the previous one's), so that the receiver can
 * move to the new secret whenever it likes.
 */
export const WEBHOOK_SIGNATURE_HEADER = 'changeledger-signature';

const hmac = (secret: string, timestampSeconds: number, body: string) =>
  createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');

export const signWebhook = (
  secrets: string | readonly string[],
  timestampSeconds: number,
  body: string,
): string =>
  [
    `t=${timestampSeconds}`,
    ...[secrets].flat().map((secret) => `v1=${hmac(secret, timestampSeconds, body)}`),
  ].join(',');

/**
 * What a receiver does with the signature header (exported for receivers written in
 * TypeScript, and for the tests): the body is authentic (one `v1` is its HMAC with `secret`) and
 * recent (within `toleranceSeconds` of `nowSeconds`, so that a captured delivery cannot be
 * replayed later).
 */
export const verifyWebhookSignature = (
  secret: string,
  header: string | undefined,
  body: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean => {
  const match = /^t=(\d{1,12})((?:,v1=[0-9a-f]{64}){1,4})$/.exec(header ?? '');
  if (!match) return false;
  const timestamp = Number(match[1]);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(hmac(secret, timestamp, body), 'hex');
  let valid = false;
  // every candidate compared, in constant time each
  for (const candidate of match[2].slice(1).split(',')) {
    if (timingSafeEqual(expected, Buffer.from(candidate.slice('v1='.length), 'hex'))) valid = true;
  }
  return valid;
};
