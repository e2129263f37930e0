import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { AccessDeniedError, UnavailableError } from '@eventstore/db-client';
import {
  type EventStore,
  EventStoreDbEventStore,
  type NewEvent,
  SqliteEventStore,
} from '@changeledger/event-store';
import { InMemoryEventStoreDbClient } from '../../event-store/src/adapters/eventstoredb/testing/in-memory-eventstoredb-client';
import {
  normalHistory,
  normalRequest,
  templateCreated,
  templateRef,
} from '../../domain/src/change-request/change-request.fixtures';
import { waitUntil } from '../../../test/support/wait-until';
import { startWebhookReceiver, type WebhookReceiver } from './testing/webhook-receiver';
import { CHECKPOINT_NAME, WebhookCheckpoints } from './webhook-checkpoints';
import { retryAfterOf, WebhookDispatcher, type WebhookTarget } from './webhook-dispatcher';
import { WebhookSubjects } from './webhook-subjects';
import { signWebhook, verifyWebhookSignature, WEBHOOK_SIGNATURE_HEADER } from './webhook-payload';

const SECRET = 'webhook-test-secret-0123456789abcdef';
const ACTOR = { id: 'u-ivan', name: 'Ivan Implementer', roles: ['implementer'] };

const anEvent = (type: string, data: Record<string, unknown> = {}): NewEvent => ({
  eventId: randomUUID(),
  type,
  data,
  metadata: {
    actor: ACTOR,
    occurredAt: new Date().toISOString(),
    correlationId: randomUUID(),
    causationId: null,
    schemaVersion: 5,
  },
});

/** A domain event (from the decider's fixtures) as the store takes it. */
const asNew = (event: { type: string; data: unknown }): NewEvent => ({
  ...anEvent(event.type),
  data: event.data as Record<string, unknown>,
});

const until = (condition: () => boolean, what: string) => waitUntil(condition, what);

describe('webhook dispatcher (real SQLite log, a receiver on a loopback port)', () => {
  let dir: string;
  let events: SqliteEventStore;
  let checkpoints: WebhookCheckpoints;
  let receiver: WebhookReceiver;
  const running: WebhookDispatcher[] = [];
  const errors: string[] = [];

  const dispatcher = (
    target: Partial<WebhookTarget> = {},
    options: { timeoutMs?: number; log?: string; checkpoints?: WebhookCheckpoints; leaseMs?: number } = {},
  ) => {
    const created = new WebhookDispatcher(events, {
      target: { url: receiver.url, secret: SECRET, ...target },
      checkpoints: options.checkpoints ?? checkpoints,
      log: options.log,
      leaseMs: options.leaseMs,
      retryBaseMs: 20,
      retryMaxMs: 80,
      timeoutMs: options.timeoutMs ?? 5_000,
      logger: { log: () => undefined, error: (m) => errors.push(m) },
    });
    running.push(created);
    return created;
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-webhooks-'));
    events = new SqliteEventStore(join(dir, 'events.sqlite'));
    checkpoints = new WebhookCheckpoints(join(dir, 'webhooks.sqlite'));
    receiver = await startWebhookReceiver();
    errors.length = 0;
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop()));
    await receiver.close();
    checkpoints.close();
    await events.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends each event once, in order, signed, as the audit API shows it, with its subject as it stood then', async () => {
    const webhook = dispatcher();
    await webhook.start();
    const [submitted, ...reviews] = normalHistory('awaiting-approval', { risk: 'medium' }).map(asNew);
    await events.append('changeRequest-CHG-001', [submitted, reviews[0]], 'no-stream');
    await events.append('standardTemplate-STD-001', [asNew(templateCreated())], 'no-stream');
    await events.append('changeRequest-CHG-001', reviews.slice(1), 1n);
    const count = 2 + reviews.length;
    await receiver.received(count);
    const head = await events.headPosition();
    await until(() => webhook.status().deliveredThrough === head.toString(), 'all accepted');

    const bodies = receiver.bodies();
    expect(bodies.map((b) => b.type)).toEqual([
      'ChangeSubmitted',
      'ReviewRecorded',
      'StandardTemplateCreated',
      ...reviews.slice(1).map((e) => e.type),
    ]);
    const change = (status: string, version: number) => ({
      kind: 'change-request',
      id: 'CHG-001',
      title: normalRequest().title,
      changeType: 'normal',
      status,
      riskLevel: 'medium',
      version,
    });
    expect(bodies[0].subject).toEqual(change('in-review', 1));
    expect(bodies[1].subject).toEqual(change('in-review', 2));
    expect(bodies[2].subject).toEqual({
      kind: 'standard-template',
      id: 'STD-001',
      name: templateRef.name,
      active: true,
      version: 1,
    });
    // folded one event after another, the last as the change stood after its reviews
    expect(bodies.at(-1)!.subject).toEqual(change('awaiting-approval', 1 + reviews.length));
    expect(bodies[0]).toMatchObject({
      eventId: submitted.eventId,
      streamId: 'changeRequest-CHG-001',
      revision: 0,
      position: expect.stringMatching(/^\d+$/),
      occurredAt: submitted.metadata.occurredAt,
      actor: ACTOR,
      data: submitted.data,
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    const first = receiver.deliveries[0];
    expect(first.headers).toMatchObject({
      'content-type': 'application/json',
      'changeledger-event-id': submitted.eventId,
      'changeledger-event-type': 'ChangeSubmitted',
      'changeledger-delivery-attempt': '1',
    });
    const now = Math.floor(Date.now() / 1000);
    for (const delivery of receiver.deliveries) {
      const signature = delivery.headers[WEBHOOK_SIGNATURE_HEADER] as string;
      expect(verifyWebhookSignature(SECRET, signature, delivery.body, now)).toBe(true);
      expect(
        verifyWebhookSignature('another-secret-0123456789abcdefghij', signature, delivery.body, now),
      ).toBe(false);
    }
    expect(webhook.status()).toMatchObject({
      deliveredThrough: bodies.at(-1)!.position,
      lastDeliveredAt: expect.any(String),
      failing: null,
    });
    expect(JSON.stringify(webhook.status())).not.toContain('receiver-secret');
    // nothing is sent twice: one more event is the next and only delivery (in order, so a second
    // sending of any of the first would have come before it)
    const created = templateCreated();
    const marker = asNew({ ...created, data: { ...created.data, templateId: 'STD-002' } });
    await events.append('standardTemplate-STD-002', [marker], 'no-stream');
    await receiver.received(count + 1);
    expect(receiver.deliveries.map((d) => d.headers['changeledger-event-id'])).toEqual([
      ...bodies.map((b) => b.eventId),
      marker.eventId,
    ]);
  });

  it('names the subject as it stood at any event, also when folding starts afresh (a restart), and at least by id', async () => {
    const history = normalHistory('approved', { risk: 'high' }).map(asNew);
    await events.append('changeRequest-CHG-001', history, 'no-stream');
    const recorded = await events.readStream('changeRequest-CHG-001');
    const incremental = new WebhookSubjects(events);
    const oneByOne = [];
    for (const event of recorded) oneByOne.push(await incremental.after(event));
    // a fresh fold at the fourth event and at the last one agrees with the step-by-step one
    expect(await new WebhookSubjects(events).after(recorded[3])).toEqual(oneByOne[3]);
    expect(await new WebhookSubjects(events).after(recorded.at(-1)!)).toEqual(oneByOne.at(-1));
    expect(oneByOne.map((s) => ('status' in s ? s.status : null))).toEqual([
      'in-review',
      'in-review',
      'in-review',
      'in-review',
      'awaiting-approval',
      'approved',
    ]);
    // a history the domain never writes (an edited store): named by id, not held up
    await events.append('changeRequest-CHG-002', [anEvent('ChangeSubmitted', {})], 'no-stream');
    const [odd] = await events.readStream('changeRequest-CHG-002');
    expect(await incremental.after(odd)).toEqual({ kind: 'change-request', id: 'CHG-002' });
  });

  it('with only some event types sent (WEBHOOK_EVENTS), folds on from the state it kept: reads the stream after it, not from the start', async () => {
    const history = normalHistory('approved', { risk: 'high' }).map(asNew);
    await events.append('changeRequest-CHG-001', history, 'no-stream');
    const recorded = await events.readStream('changeRequest-CHG-001');
    const everyOne = new WebhookSubjects(events);
    const expected = [];
    for (const event of recorded) expected.push(await everyOne.after(event));
    const reads: (bigint | undefined)[] = [];
    const readsCounted = {
      readStream: (streamId: string, options?: { fromRevision?: bigint }) => {
        reads.push(options?.fromRevision);
        return events.readStream(streamId, options);
      },
    } as unknown as EventStore;
    const everyOther = new WebhookSubjects(readsCounted);
    for (let i = 0; i < recorded.length; i += 2) {
      expect(await everyOther.after(recorded[i])).toEqual(expected[i]);
    }
    // the first read from the start, each later one from the revision after the state kept
    expect(reads).toEqual([
      undefined,
      ...Array.from({ length: Math.ceil(recorded.length / 2) - 1 }, (_, k) => BigInt(2 * k + 1)),
    ]);
  });

  it('an earlier event of the stream that no longer parses (an edited store) does not hold the delivery up: its subject is named by id', async () => {
    const first = dispatcher();
    await first.start();
    const [submitted, ...rest] = normalHistory('awaiting-approval').map(asNew);
    await events.append('changeRequest-CHG-001', [submitted], 'no-stream');
    await receiver.received(1);
    await first.stop();
    const db = new Database(join(dir, 'events.sqlite'));
    db.prepare("UPDATE events SET data = '{\"title\": ' WHERE stream_id = 'changeRequest-CHG-001'").run();
    db.close();
    // a restarted webhook folds the stream afresh for the next event, and meets the edited row
    const second = dispatcher();
    await second.start();
    await events.append('changeRequest-CHG-001', [rest[0]], 0n);
    await receiver.received(2);
    expect(JSON.parse(receiver.deliveries[1].body).subject).toEqual({
      kind: 'change-request',
      id: 'CHG-001',
    });
    expect(second.status().failing).toBeNull();
    expect(errors).toEqual([]);
  });

  it('starts a new target at the head of the log: history is not sent', async () => {
    await events.append('changeRequest-CHG-001', [anEvent('ChangeSubmitted')], 'no-stream');
    const webhook = dispatcher();
    await webhook.start();
    await events.append('changeRequest-CHG-002', [anEvent('ChangeSubmitted')], 'no-stream');
    await receiver.received(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.bodies().map((b) => b.streamId)).toEqual(['changeRequest-CHG-002']);
  });

  it('retries a refusing receiver with growing delays; later events wait behind the refused one', async () => {
    receiver.answer(() => 500);
    const webhook = dispatcher();
    await webhook.start();
    const [a, b] = [anEvent('ChangeSubmitted'), anEvent('ReviewRecorded')];
    await events.append('changeRequest-CHG-001', [a, b], 'no-stream');
    await until(() => (webhook.status().failing?.attempts ?? 0) >= 3, 'three failed attempts');
    expect(webhook.status().failing).toMatchObject({
      eventId: a.eventId,
      position: expect.stringMatching(/^\d+$/),
      lastError: 'HTTP 500',
      since: expect.any(String),
    });
    receiver.answer(() => 204);
    await until(() => receiver.deliveries.at(-1)?.headers['changeledger-event-id'] === b.eventId, 'b sent');
    await until(() => webhook.status().failing === null, 'recovery');
    const tries = receiver.deliveries.slice(0, -1);
    expect(tries.length).toBeGreaterThanOrEqual(4);
    expect(
      receiver.deliveries.map((d) => [
        d.headers['changeledger-event-id'],
        d.headers['changeledger-delivery-attempt'],
      ]),
    ).toEqual([...tries.map((_, i) => [a.eventId, String(i + 1)]), [b.eventId, '1']]);
    // 20, 40, 80 ms between the first attempts (retryBaseMs 20, doubling; a timer may fire a little early)
    const gaps = [1, 2, 3].map((i) => receiver.deliveries[i].at - receiver.deliveries[i - 1].at);
    gaps.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(20 * 2 ** i - 5));
    // ...and they are the delays it chose: growing, not some constant wait that passes the above
    expect(errors.slice(0, 3).map((m) => /trying again in (\d+) ms/.exec(m)?.[1])).toEqual([
      '20',
      '40',
      '80',
    ]);
    // the same body each time: a receiver may compare or hash it
    expect(new Set(tries.map((d) => d.body)).size).toBe(1);
    expect(errors.filter((m) => /not delivered \(attempt \d+: HTTP 500\)/.test(m))).toHaveLength(
      tries.length - 1,
    );
  });

  it('takes neither a redirect nor silence for an acceptance', async () => {
    let phase: 'redirect' | 'silence' | 'accept' = 'redirect';
    receiver.answer(() => (phase === 'redirect' ? 302 : phase === 'silence' ? 'hang' : 200));
    const webhook = dispatcher({}, { timeoutMs: 200 });
    await webhook.start();
    const event = anEvent('ChangeSubmitted');
    await events.append('changeRequest-CHG-001', [event], 'no-stream');
    await until(() => webhook.status().failing?.lastError === 'HTTP 302', 'the redirect refused');
    phase = 'silence';
    await until(() => webhook.status().failing?.lastError === 'no answer within 200 ms', 'the timeout');
    phase = 'accept';
    await until(() => webhook.status().failing === null, 'delivery');
    expect(new Set(receiver.deliveries.map((d) => d.headers['changeledger-event-id']))).toEqual(
      new Set([event.eventId]),
    );
    expect(webhook.status().deliveredThrough).toBe((await events.headPosition()).toString());
  });

  it('sends a user and password in the URL as Basic authentication, and never shows the path, query or password', async () => {
    const url = new URL(receiver.url);
    url.username = 'hook user';
    url.password = 'p@ss:word';
    receiver.answer((_delivery, index) => (index === 0 ? 503 : 204));
    const webhook = dispatcher({ url: url.toString() });
    await webhook.start();
    await events.append('changeRequest-CHG-001', [anEvent('ChangeSubmitted')], 'no-stream');
    await receiver.received(2);
    await until(() => webhook.status().failing === null, 'delivery');
    expect(receiver.deliveries[1].headers.authorization).toBe(
      `Basic ${Buffer.from('hook user:p@ss:word').toString('base64')}`,
    );
    const shown = JSON.stringify([errors, webhook.status()]);
    expect(errors.length).toBeGreaterThan(0);
    for (const secret of ['receiver-secret', 'p%40ss', 'p@ss', '/hooks/changeledger']) {
      expect(shown).not.toContain(secret);
    }
  });

  it('names an unreachable receiver, and delivers once it is back', async () => {
    const elsewhere = await startWebhookReceiver();
    const port = Number(new URL(elsewhere.url).port);
    await elsewhere.close(); // nothing listens there now
    const webhook = dispatcher({ url: elsewhere.url });
    await webhook.start();
    await events.append('changeRequest-CHG-001', [anEvent('ChangeSubmitted')], 'no-stream');
    await until(() => webhook.status().failing !== null, 'a failure');
    expect(webhook.status().failing?.lastError).toBe('ECONNREFUSED');
    const back = await startWebhookReceiver(() => 204, port);
    try {
      await back.received(1);
      await until(() => webhook.status().failing === null, 'delivery');
    } finally {
      await back.close();
    }
  });

  it('resumes after a restart where the receiver left off: nothing accepted is sent again', async () => {
    const first = dispatcher();
    await first.start();
    await events.append(
      'changeRequest-CHG-001',
      [anEvent('ChangeSubmitted'), anEvent('ReviewRecorded')],
      'no-stream',
    );
    const head = await events.headPosition();
    await until(() => first.status().deliveredThrough === head.toString(), 'both accepted');
    await first.stop();
    // written while no dispatcher ran
    await events.append('changeRequest-CHG-002', [anEvent('ChangeSubmitted')], 'no-stream');
    checkpoints.close();
    checkpoints = new WebhookCheckpoints(join(dir, 'webhooks.sqlite'));
    const second = dispatcher();
    await second.start();
    await events.append('changeRequest-CHG-003', [anEvent('ChangeSubmitted')], 'no-stream');
    await receiver.received(4);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.bodies().map((b) => b.streamId)).toEqual([
      'changeRequest-CHG-001',
      'changeRequest-CHG-001',
      'changeRequest-CHG-002',
      'changeRequest-CHG-003',
    ]);
  });

  it('a stop abandons an unanswered delivery, which the next start sends again', async () => {
    receiver.answer((_delivery, index) => (index === 0 ? 'hang' : 204));
    const first = dispatcher();
    await first.start();
    const event = anEvent('ChangeSubmitted');
    await events.append('changeRequest-CHG-001', [event], 'no-stream');
    await receiver.received(1);
    await first.stop();
    const second = dispatcher();
    await second.start();
    await receiver.received(2);
    expect(receiver.deliveries.map((d) => d.headers['changeledger-event-id'])).toEqual([
      event.eventId,
      event.eventId,
    ]);
  });

  it('a stop does not wait out the connect timeout of a receiver that never completes the connection', async () => {
    // TCP accepts, TLS never answers: the connection stays "being set up", where an abort does nothing
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const webhook = dispatcher({ url: `https://127.0.0.1:${port}/hook` }, { timeoutMs: 20_000 });
      await webhook.start();
      await events.append('changeRequest-CHG-001', [anEvent('ChangeSubmitted')], 'no-stream');
      await until(() => sockets.length > 0, 'the delivery connecting'); // stopped mid-connect, not before
      const stopping = performance.now();
      await webhook.stop();
      // the 2 s grace, not the 20 s connect timeout
      expect(performance.now() - stopping).toBeLessThan(8_000);
      expect(webhook.status()).toMatchObject({ failing: null, lastDeliveredAt: null });
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  describe('two processes with the same checkpoint file (an overlap in a deploy)', () => {
    let other: WebhookCheckpoints; // the second process's connection to webhooks.sqlite
    beforeEach(() => {
      other = new WebhookCheckpoints(join(dir, 'webhooks.sqlite'));
    });
    afterEach(async () => {
      await Promise.all(running.splice(0).map((d) => d.stop()));
      other.close();
    });

    it('one delivers, the other stands by, and takes over when the first stops: each event sent once, none lost', async () => {
      const first = dispatcher({}, { leaseMs: 600 });
      await first.start();
      const second = dispatcher({}, { leaseMs: 600, checkpoints: other });
      await second.start();
      expect(second.status()).toMatchObject({ standingBy: true, failing: null });
      expect(first.status().standingBy).toBe(false);
      await events.append(
        'changeRequest-CHG-001',
        [anEvent('ChangeSubmitted'), anEvent('ReviewRecorded')],
        'no-stream',
      );
      await receiver.received(2);
      const head = await events.headPosition();
      await until(() => first.status().deliveredThrough === head.toString(), 'both accepted');
      await first.stop();
      await until(() => !second.status().standingBy, 'the second taking over');
      await events.append('changeRequest-CHG-002', [anEvent('ChangeSubmitted')], 'no-stream');
      await receiver.received(3);
      await new Promise((resolve) => setTimeout(resolve, 300)); // (long enough for any twice-sent)
      expect(receiver.bodies().map((b) => [b.streamId, b.type])).toEqual([
        ['changeRequest-CHG-001', 'ChangeSubmitted'],
        ['changeRequest-CHG-001', 'ReviewRecorded'],
        ['changeRequest-CHG-002', 'ChangeSubmitted'],
      ]);
      expect(errors.filter((m) => m.includes('given up'))).toEqual([]);
    });

    it('a holder that lost its lease (stalled past it) stops delivering and moves no checkpoint; it delivers again once it gets the lease back', async () => {
      const holder = dispatcher({}, { leaseMs: 600 });
      await holder.start();
      await events.append('changeRequest-CHG-001', [anEvent('ChangeSubmitted')], 'no-stream');
      await receiver.received(1);
      const delivered = await events.headPosition();
      await until(() => holder.status().deliveredThrough === delivered.toString(), 'accepted');
      // another process claims the lease as if the holder had stalled past its expiry
      expect(other.claim(CHECKPOINT_NAME, 'another process', Date.now() + 60_000, 600)).toBe(true);
      await until(() => holder.status().standingBy, 'the holder noticing');
      await events.append('changeRequest-CHG-002', [anEvent('ChangeSubmitted')], 'no-stream');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(receiver.deliveries).toHaveLength(1); // not sent while another holds the lease
      // a save by a process without the lease moves nothing
      checkpoints.setAsHolder(CHECKPOINT_NAME, delivered + 1_000n, new Date(), 'not the holder');
      expect(checkpoints.get(CHECKPOINT_NAME)).toBe(delivered);
      other.release(CHECKPOINT_NAME, 'another process');
      await receiver.received(2);
      expect(receiver.bodies().map((b) => b.streamId)).toEqual([
        'changeRequest-CHG-001',
        'changeRequest-CHG-002',
      ]);
      expect(holder.status().standingBy).toBe(false);
    });
  });

  it('a stop waits for the answer to a delivery under way: a graceful restart sends nothing twice', async () => {
    receiver.answer(() => ({ status: 204, afterMs: 300 }));
    const first = dispatcher();
    await first.start();
    await events.append('changeRequest-CHG-001', [anEvent('ChangeSubmitted')], 'no-stream');
    await receiver.received(1);
    await first.stop();
    expect(first.status().deliveredThrough).toBe((await events.headPosition()).toString());
    const second = dispatcher();
    await second.start();
    await events.append('changeRequest-CHG-002', [anEvent('ChangeSubmitted')], 'no-stream');
    await receiver.received(2);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(receiver.bodies().map((b) => b.streamId)).toEqual([
      'changeRequest-CHG-001',
      'changeRequest-CHG-002',
    ]);
  });

  it('sends only the chosen event types, and moves its checkpoint past the others', async () => {
    const first = dispatcher({ eventTypes: ['ChangeApproved'] });
    await first.start();
    await events.append(
      'changeRequest-CHG-001',
      [anEvent('ChangeSubmitted'), anEvent('ChangeApproved'), anEvent('ChangeScheduled')],
      'no-stream',
    );
    await receiver.received(1);
    const head = await events.headPosition();
    await until(() => first.status().deliveredThrough === head.toString(), 'the skipped events passed');
    await first.stop();
    expect(checkpoints.get('webhook')).toBe(head);
    expect(receiver.bodies().map((b) => b.type)).toEqual(['ChangeApproved']);
  });

  it('while a secret is being replaced, signs with both: the receiver may check with either', async () => {
    const webhook = dispatcher({ secret: 'n'.repeat(40), previousSecret: SECRET });
    await webhook.start();
    await events.append('changeRequest-CHG-001', [anEvent('ChangeSubmitted')], 'no-stream');
    await receiver.received(1);
    const [delivery] = receiver.deliveries;
    const header = delivery.headers[WEBHOOK_SIGNATURE_HEADER] as string;
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    const now = Math.floor(Date.now() / 1000);
    expect(verifyWebhookSignature('n'.repeat(40), header, delivery.body, now)).toBe(true);
    expect(verifyWebhookSignature(SECRET, header, delivery.body, now)).toBe(true);
    expect(verifyWebhookSignature('z'.repeat(40), header, delivery.body, now)).toBe(false);
  });

  it('never moves a checkpoint back, unless told to (positions are 64-bit)', () => {
    checkpoints.set('a', 10n, new Date());
    checkpoints.set('a', 4n, new Date());
    checkpoints.set('b', 18446744073709551615n, new Date());
    expect(checkpoints.get('a')).toBe(10n);
    expect(checkpoints.get('b')).toBe(18446744073709551615n);
    expect(checkpoints.get('c')).toBeUndefined();
    checkpoints.reset('a', 3n, new Date());
    expect(checkpoints.get('a')).toBe(3n);
  });

  it.each<[string, string, [string, string][]]>([
    [
      'a row per URL, unpadded (the first layout)',
      'target',
      [
        ['http://a.example/hook?token=1', '1042'],
        ['http://b.example/hook', '99'],
      ],
    ],
    ['one row by name, unpadded', 'name', [['webhook', '1042']]],
  ])('opens a checkpoint file of an earlier layout: %s', (_name, column, rows) => {
    checkpoints.close();
    const file = join(dir, `old-${column}.sqlite`);
    const old = new Database(file);
    old.exec(
      `CREATE TABLE webhook_checkpoints (${column} TEXT PRIMARY KEY, position TEXT NOT NULL, updated_at TEXT NOT NULL)`,
    );
    for (const [key, position] of rows) {
      old
        .prepare('INSERT INTO webhook_checkpoints VALUES (?, ?, ?)')
        .run(key, position, new Date().toISOString());
    }
    old.close();
    checkpoints = new WebhookCheckpoints(file);
    expect(checkpoints.get('webhook')).toBe(1042n);
    // text order is number order again: 1100 > 1042 moves it, 999 does not
    checkpoints.set('webhook', 1100n, new Date());
    checkpoints.set('webhook', 999n, new Date());
    expect(checkpoints.get('webhook')).toBe(1100n);
    checkpoints.close();
    checkpoints = new WebhookCheckpoints(file);
    expect(checkpoints.get('webhook')).toBe(1100n);
  });

  it('a position typed into the file by hand (unpadded) is padded at the next open: the checkpoint moves on from it', () => {
    checkpoints.set(CHECKPOINT_NAME, 2000n, new Date());
    checkpoints.close();
    const file = join(dir, 'webhooks.sqlite');
    const edited = new Database(file);
    edited.prepare('UPDATE webhook_checkpoints SET position = ? WHERE name = ?').run('1043', CHECKPOINT_NAME);
    edited.close();
    checkpoints = new WebhookCheckpoints(file);
    expect(checkpoints.get(CHECKPOINT_NAME)).toBe(1043n);
    checkpoints.set(CHECKPOINT_NAME, 1044n, new Date());
    checkpoints.set(CHECKPOINT_NAME, 5000n, new Date());
    expect(checkpoints.get(CHECKPOINT_NAME)).toBe(5000n);
  });

  it('a checkpoint file that is not one, or holds no position, is an error naming the file', () => {
    const garbage = join(dir, 'garbage.sqlite');
    writeFileSync(garbage, 'not a database at all, but long enough to have a header of sorts........');
    expect(() => new WebhookCheckpoints(garbage)).toThrow(
      `the webhook checkpoint file ${garbage} could not be opened: file is not a database`,
    );
    checkpoints.set(CHECKPOINT_NAME, 7n, new Date());
    const edited = new Database(join(dir, 'webhooks.sqlite'));
    edited.prepare('UPDATE webhook_checkpoints SET position = ?').run('12x');
    edited.close();
    expect(() => checkpoints.get(CHECKPOINT_NAME)).toThrow(
      `the webhook checkpoint file ${join(dir, 'webhooks.sqlite')} holds no position for webhook but "12x"`,
    );
    // not padded into something else at the next open: the error shows what is there
    checkpoints.close();
    checkpoints = new WebhookCheckpoints(join(dir, 'webhooks.sqlite'));
    expect(() => checkpoints.get(CHECKPOINT_NAME)).toThrow('holds no position for webhook but "12x"');
  });

  it('an event the receiver keeps refusing is given up once an operator moves the checkpoint past it (webhook:skip), the events it passed with it', async () => {
    const [refused, passed, next] = [
      anEvent('ChangeSubmitted'),
      anEvent('ReviewRecorded'),
      anEvent('ChangeApproved'),
    ];
    receiver.answer((delivery) =>
      delivery.headers['changeledger-event-id'] === refused.eventId ? 400 : 204,
    );
    const webhook = dispatcher();
    await webhook.start();
    await events.append('changeRequest-CHG-001', [refused, passed], 'no-stream');
    await until(() => (webhook.status().failing?.attempts ?? 0) >= 2, 'two refusals');
    const failing = webhook.status().failing!;
    expect(failing).toMatchObject({ eventId: refused.eventId, lastError: 'HTTP 400' });
    expect(errors.at(-1)).toContain(`to give it up: npm run webhook:skip -- --through ${failing.position}`);
    // the operator, from another process (its own handle on the file), skips through `passed` too
    const operator = new WebhookCheckpoints(join(dir, 'webhooks.sqlite'));
    const through = BigInt(failing.position) + 1n;
    operator.set(CHECKPOINT_NAME, through, new Date());
    operator.close();
    await events.append('changeRequest-CHG-001', [next], 1n);
    await until(
      () => receiver.deliveries.some((d) => d.headers['changeledger-event-id'] === next.eventId),
      'next sent',
    );
    // the receiver has it before its answer reaches the dispatcher, which then moves on
    await until(() => webhook.status().deliveredThrough === String(through + 1n), 'next accepted');
    const sent = receiver.deliveries.map((d) => d.headers['changeledger-event-id']);
    expect(new Set(sent)).toEqual(new Set([refused.eventId, next.eventId])); // `passed` never went out
    expect(sent.at(-1)).toBe(next.eventId);
    expect(webhook.status()).toMatchObject({ failing: null, deliveredThrough: String(through + 1n) });
    expect(errors.some((m) => m.includes(`given up: the stored checkpoint was moved to ${through}`))).toBe(
      true,
    );
    await webhook.stop();
    expect(checkpoints.get(CHECKPOINT_NAME)).toBe(through + 1n);
  });

  it('an event the log cannot give (its row edited into no JSON) is named where it is, and given up by webhook:skip without a restart', async () => {
    const first = dispatcher();
    await first.start();
    const [submitted, reviewed, approved] = normalHistory('awaiting-approval').map(asNew);
    await events.append('changeRequest-CHG-001', [submitted], 'no-stream');
    await receiver.received(1);
    await first.stop();
    await events.append('changeRequest-CHG-001', [reviewed], 0n);
    const [, stuck] = await events.readStream('changeRequest-CHG-001');
    const db = new Database(join(dir, 'events.sqlite'));
    db.prepare('UPDATE events SET data = ? WHERE position = ?').run('{"kind": ', stuck.position);
    db.close();
    const webhook = dispatcher();
    await webhook.start();
    await until(() => (webhook.status().failing?.attempts ?? 0) >= 2, 'two failed reads');
    expect(webhook.status().failing).toMatchObject({
      eventId: null,
      position: String(stuck.position),
      lastError: expect.stringContaining('is corrupt'),
    });
    expect(errors.at(-1)).toContain(`to give it up: npm run webhook:skip -- --through ${stuck.position}`);
    // the operator, from another process, skips it; the service goes on with the next
    const operator = new WebhookCheckpoints(join(dir, 'webhooks.sqlite'));
    operator.set(CHECKPOINT_NAME, stuck.position, new Date());
    operator.close();
    await events.append('changeRequest-CHG-001', [approved], 1n);
    await until(
      () => receiver.deliveries.some((d) => d.headers['changeledger-event-id'] === approved.eventId),
      'the next event sent',
    );
    expect(receiver.deliveries.map((d) => d.headers['changeledger-event-id'])).toEqual([
      submitted.eventId,
      approved.eventId,
    ]);
    expect(webhook.status().failing).toBeNull();
    expect(errors.some((m) => m.includes(`the event at position ${stuck.position} given up`))).toBe(true);
    await webhook.stop();
  });

  it("waits as long as the receiver's Retry-After asks (429 or 503), within the cap, never less than the first retry's delay", async () => {
    const answers = [
      { status: 429, afterMs: 0, headers: { 'retry-after': '1' } },
      { status: 503, afterMs: 0, headers: { 'retry-after': '0' } },
      { status: 503, afterMs: 0, headers: { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' } },
      { status: 503, afterMs: 0, headers: { 'retry-after': '120' } },
    ];
    receiver.answer((_, index) => answers[index] ?? 204);
    const webhook = new WebhookDispatcher(events, {
      target: { url: receiver.url, secret: SECRET },
      checkpoints,
      retryBaseMs: 20,
      retryMaxMs: 1_500,
      logger: { log: () => undefined, error: (m) => errors.push(m) },
    });
    running.push(webhook);
    await webhook.start();
    await events.append('changeRequest-CHG-001', [anEvent('ChangeSubmitted')], 'no-stream');
    await receiver.received(5, 10_000);
    // 1 s as asked; "0" and a date gone by: the first retry's 20 ms, not a loop with no wait;
    // 120 s: the cap
    expect(errors.map((m) => /trying again in (\d+) ms/.exec(m)?.[1])).toEqual(['1000', '20', '20', '1500']);
    expect(errors[0]).toContain("(the receiver's Retry-After)");
    const gaps = [1, 2, 3, 4].map((i) => receiver.deliveries[i].at - receiver.deliveries[i - 1].at);
    expect(gaps[0]).toBeGreaterThanOrEqual(990);
    expect(gaps[0]).toBeLessThan(2_000);
    expect(gaps[1]).toBeGreaterThanOrEqual(15);
    expect(gaps[3]).toBeGreaterThanOrEqual(1_490);
    expect(retryAfterOf('120', new Date())).toBe(120_000);
    expect(retryAfterOf('Wed, 21 Oct 2026 07:28:30 GMT', new Date('2026-10-21T07:28:00Z'))).toBe(30_000);
    expect(retryAfterOf('soon', new Date())).toBeUndefined();
  });

  it('a new URL goes on where the old one stopped (a rotated token loses nothing)', async () => {
    const first = dispatcher();
    await first.start();
    await first.stop();
    await events.append('changeRequest-CHG-001', [anEvent('ChangeSubmitted')], 'no-stream');
    const rotated = await startWebhookReceiver();
    try {
      const second = dispatcher({ url: rotated.url.replace('receiver-secret', 'rotated-secret') });
      await second.start();
      await rotated.received(1);
      expect(rotated.bodies().map((b) => b.streamId)).toEqual(['changeRequest-CHG-001']);
      await second.stop();
    } finally {
      await rotated.close();
    }
  });

  it('a checkpoint past the end of the log (a restored or another log) starts again at its end, and says so', async () => {
    await events.append('changeRequest-CHG-001', [anEvent('ChangeSubmitted')], 'no-stream');
    checkpoints.set('webhook', 1_000_000n, new Date());
    const webhook = dispatcher();
    await webhook.start();
    const head = await events.headPosition();
    expect(webhook.status().deliveredThrough).toBe(head.toString());
    expect(checkpoints.get('webhook')).toBe(head);
    expect(errors).toEqual([
      expect.stringMatching(/checkpoint \(position 1000000\) is past the end of the event log/),
    ]);
    await events.append('changeRequest-CHG-002', [anEvent('ChangeSubmitted')], 'no-stream');
    await receiver.received(1);
    expect(receiver.bodies().map((b) => b.streamId)).toEqual(['changeRequest-CHG-002']);
  });

  it("a checkpoint of another event store (EVENT_STORE switched) starts again at the log's end, and says so; one of the same goes on", async () => {
    // a checkpoint of a file from before the event store was recorded: taken as this one's
    await events.append('changeRequest-CHG-001', [anEvent('ChangeSubmitted')], 'no-stream');
    checkpoints.set('webhook', await events.headPosition(), new Date());
    expect(checkpoints.logOf('webhook')).toBeNull();
    const onSqlite = dispatcher({}, { log: 'sqlite' });
    await onSqlite.start();
    await onSqlite.stop();
    expect(checkpoints.logOf('webhook')).toBe('sqlite');
    await events.append('changeRequest-CHG-002', [anEvent('ChangeSubmitted')], 'no-stream');
    const again = dispatcher({}, { log: 'sqlite' });
    await again.start();
    await receiver.received(1); // the same store: goes on where it stopped
    await again.stop();
    expect(receiver.bodies().map((b) => b.streamId)).toEqual(['changeRequest-CHG-002']);

    // the positions of that log below this one's end (SQLite counts events, EventStoreDB bytes):
    // taken as this log's, most of its history would go out again
    await events.append('changeRequest-CHG-003', [anEvent('ChangeSubmitted')], 'no-stream');
    checkpoints.reset('webhook', 1n, new Date());
    const switched = dispatcher({}, { log: 'eventstoredb' });
    await switched.start();
    const head = await events.headPosition();
    expect(switched.status().deliveredThrough).toBe(head.toString());
    expect([checkpoints.get('webhook'), checkpoints.logOf('webhook')]).toEqual([head, 'eventstoredb']);
    expect(errors).toEqual([
      expect.stringMatching(
        /checkpoint \(position 1\) is of another event store \(sqlite, now eventstoredb\): delivering the events after \d+/,
      ),
    ]);
    await events.append('changeRequest-CHG-004', [anEvent('ChangeSubmitted')], 'no-stream');
    await receiver.received(2);
    expect(receiver.bodies().map((b) => b.streamId)).toEqual([
      'changeRequest-CHG-002',
      'changeRequest-CHG-004',
    ]);
  });

  it('a stop during the start leaves nothing running', async () => {
    const webhook = dispatcher();
    const starting = webhook.start();
    await webhook.stop();
    await starting;
    await events.append('changeRequest-CHG-001', [anEvent('ChangeSubmitted')], 'no-stream');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.deliveries).toHaveLength(0);
    expect(checkpoints.get('webhook')).toBeUndefined();
    // Not just slow: a dispatcher started now (a first start: from the head on) delivers a later
    // event, and by then nothing has sent the earlier one.
    const witness = dispatcher();
    await witness.start();
    const later = anEvent('ChangeSubmitted');
    await events.append('changeRequest-CHG-002', [later], 'no-stream');
    await receiver.received(1);
    await witness.stop();
    expect(receiver.deliveries.map((d) => d.headers['changeledger-event-id'])).toEqual([later.eventId]);
  });
});

describe('webhook signatures', () => {
  it("the README's receiver check (run from the README itself) agrees with verifyWebhookSignature", () => {
    const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
    const block = /A receiver's check, in Node[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const code = block!.replace(/^import .*$/m, '');
    type Check = (secret: string, header: string | undefined, body: string, now?: number) => boolean;
    const check = new Function('createHmac', 'timingSafeEqual', `${code}\nreturn verifyChangeledger;`)(
      createHmac,
      timingSafeEqual,
    ) as Check;
    const now = 1_800_000_000;
    const body = '{"type":"ChangeApproved"}';
    const other = 'o'.repeat(40);
    for (const [header, text] of [
      [signWebhook(SECRET, now, body), body],
      [signWebhook([other, SECRET], now, body), body],
      [signWebhook(SECRET, now, body), `${body} `],
      [signWebhook(SECRET, now - 360, body), body],
      [signWebhook(other, now, body), body],
      ['t=1800000000,v1=abc', body],
      ['garbage', body],
    ]) {
      expect([header, check(SECRET, header, text, now)]).toEqual([
        header,
        verifyWebhookSignature(SECRET, header, text, now),
      ]);
    }
    expect(check(SECRET, signWebhook(SECRET, now, body), body, now)).toBe(true);
  });

  const body = '{"type":"ChangeApproved"}';
  const now = 1_800_000_000;
  const OTHER = 'o'.repeat(40);
  const sign = (timestamp: number, text = body, secret: string | string[] = SECRET) =>
    signWebhook(secret, timestamp, text);

  it.each<{ name: string; header: string | undefined; valid: boolean }>([
    { name: 'a fresh signature of the body', header: sign(now), valid: true },
    { name: 'one made 4 minutes ago', header: sign(now - 240), valid: true },
    { name: 'one made 6 minutes ago (a replay)', header: sign(now - 360), valid: false },
    { name: 'one of another body', header: sign(now, '{"type":"ChangeRejected"}'), valid: false },
    { name: 'one with another secret', header: sign(now, body, 'x'.repeat(40)), valid: false },
    {
      name: 'one of two (a secret being replaced: the new one first)',
      header: sign(now, body, [OTHER, SECRET]),
      valid: true,
    },
    { name: 'two, neither with this secret', header: sign(now, body, [OTHER, 'y'.repeat(40)]), valid: false },
    {
      name: 'five signatures (more than a rotation makes)',
      header: sign(now, body, [OTHER, OTHER, OTHER, OTHER, SECRET]),
      valid: false,
    },
    { name: 'no header', header: undefined, valid: false },
    { name: 'a malformed header', header: 'sha256=abc', valid: false },
  ])('$name → valid: $valid', ({ header, valid }) => {
    expect(verifyWebhookSignature(SECRET, header, body, now)).toBe(valid);
  });
});

describe('webhook dispatcher on the EventStoreDB adapter (its client double)', () => {
  /** A webhook on the adapter over a fresh double, a receiver, and what it logged as errors. */
  const onDouble = async (
    test: (setup: {
      server: InMemoryEventStoreDbClient;
      events: EventStoreDbEventStore;
      receiver: WebhookReceiver;
      webhook: WebhookDispatcher;
      errors: string[];
    }) => Promise<void>,
    retryMaxMs?: number,
    adapter: { name?: string; retry?: { maxAttempts: number; baseDelayMs: number; maxDelayMs: number } } = {},
  ) => {
    const dir = mkdtempSync(join(tmpdir(), 'changeledger-webhooks-esdb-'));
    const server = new InMemoryEventStoreDbClient();
    const quiet = { warn: () => undefined, error: () => undefined };
    const events = new EventStoreDbEventStore(server.connection(), { logger: quiet, ...adapter });
    const checkpoints = new WebhookCheckpoints(join(dir, 'webhooks.sqlite'));
    const receiver = await startWebhookReceiver();
    const errors: string[] = [];
    const webhook = new WebhookDispatcher(events, {
      target: { url: receiver.url, secret: SECRET },
      checkpoints,
      retryBaseMs: 20,
      retryMaxMs,
      logger: { log: () => undefined, error: (m) => errors.push(m) },
    });
    try {
      await webhook.start();
      await test({ server, events, receiver, webhook, errors });
    } finally {
      await webhook.stop();
      await receiver.close();
      checkpoints.close();
      await events.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it("an event whose subject cannot be read (the stream's read fails) is retried with growing delays and stays failing, then delivered once", () =>
    onDouble(async ({ server, events, receiver, webhook, errors }) => {
      // reads of the stream fail (not retried by the adapter), while its subscription works
      server.failNext('readStream', () => new AccessDeniedError(undefined, 'read access revoked'), {
        times: 4,
      });
      const submitted = anEvent('ChangeSubmitted');
      await events.append('changeRequest-CHG-001', [submitted], 'no-stream');
      await until(() => errors.length >= 1, 'a failed read');
      const since = webhook.status().failing!.since;
      await until(() => errors.length >= 3, 'three failed reads');
      // one failure from its first read on, its delays growing (it used to count as new each time)
      expect(webhook.status().failing).toMatchObject({ eventId: null, attempts: 3, since });
      expect(errors.slice(0, 3).map((m) => /reading again in (\d+) ms/.exec(m)?.[1])).toEqual([
        '20',
        '40',
        '80',
      ]);
      await receiver.received(1);
      await until(() => webhook.status().failing === null, 'the failure over');
      expect(errors).toHaveLength(4);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(receiver.deliveries.map((d) => d.headers['changeledger-event-id'])).toEqual([submitted.eventId]);
    }, 1_000));

  it("an event store that stays unavailable is named so in the public status, without its server's name or address (the log has them)", () =>
    onDouble(
      async ({ server, events, receiver, webhook, errors }) => {
        // the stream's read fails past the adapter's retries, as with a server gone
        server.failNext(
          'readStream',
          () => new UnavailableError(undefined, '14 UNAVAILABLE: connect ECONNREFUSED 10.20.30.40:2113'),
          { times: 2 },
        );
        const submitted = anEvent('ChangeSubmitted');
        await events.append('changeRequest-CHG-001', [submitted], 'no-stream');
        await until(() => errors.length >= 1, 'a failed read');
        expect(webhook.status().failing).toMatchObject({
          eventId: null,
          lastError: 'reading the event log: the event store is unavailable',
        });
        expect(errors[0]).toContain(
          'the event store is unavailable (EventStoreDB at esdb-7.internal.example:2113',
        );
        expect(errors[0]).toContain('10.20.30.40:2113');
        await receiver.received(1);
        await until(() => webhook.status().failing === null, 'read again');
      },
      undefined,
      { name: 'esdb-7.internal.example:2113', retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1 } },
    ));

  it('a subscription that ends with an error is opened again from the checkpoint: failing until the log reads again, nothing lost, nothing sent twice', () =>
    onDouble(async ({ server, events, receiver, webhook, errors }) => {
      const [a, b] = [anEvent('ChangeSubmitted'), anEvent('ChangeSubmitted')];
      await events.append('changeRequest-CHG-001', [a], 'no-stream');
      await receiver.received(1);
      // a failure the adapter does not retry itself (it resubscribes after a lost connection)
      await until(() => server.subscriptionCount === 1, 'a live subscription');
      server.dropSubscriptions(new AccessDeniedError(undefined, 'read access revoked'));
      await until(() => errors.some((m) => m.includes('reading the event log')), 'the failure noticed');
      expect(webhook.status().failing).toMatchObject({ eventId: null });
      // read again with nothing new: no longer failing, though no event came (a quiet night
      // after a dropped subscription must not keep the failing alert on until morning)
      await until(() => webhook.status().failing === null, 'reading again, with nothing new to deliver');
      await events.append('changeRequest-CHG-002', [b], 'no-stream');
      await receiver.received(2);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(receiver.deliveries.map((d) => d.headers['changeledger-event-id'])).toEqual([
        a.eventId,
        b.eventId,
      ]);
    }));
});
