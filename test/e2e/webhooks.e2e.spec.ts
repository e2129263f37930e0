import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { verifyWebhookSignature, WEBHOOK_SIGNATURE_HEADER } from '@changeledger/webhooks';
import { startWebhookReceiver, type WebhookReceiver } from '../../libs/webhooks/src/testing/webhook-receiver';
import { waitUntil } from '../support/wait-until';
import { AppHarness, USERS } from './support/app-harness';
import { cliBuilt, cliReachesEvents, runCliSettled } from './support/cli';
import { expectStatus, normalChange, reviewAll, submit } from './support/change-fixtures';

const SECRET = 'e2e-webhook-secret-0123456789abcdef';

const until = (condition: () => Promise<boolean> | boolean, what: string) =>
  waitUntil(condition, what, { timeoutMs: 15_000, everyMs: 20 });

interface Health {
  status: string;
  webhook: {
    deliveredThrough: string | null;
    failing: { attempts: number; lastError: string; eventId: string | null; position: string } | null;
  } | null;
}
type Body = Record<string, unknown> & { eventId: string; streamId: string; subject: { id: string } };

describe('webhooks: every recorded event sent to WEBHOOK_URL, signed, in order', () => {
  let dir: string;
  let receiver: WebhookReceiver;
  let app: AppHarness;
  // On an EventStoreDB server other suites may write meanwhile: only this suite's changes count.
  const ours = new Set<string>();
  let after = 0n;
  const start = () =>
    AppHarness.start({ WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: SECRET }, { dataDir: dir });
  const health = async () => (await app.get<Health>('/health', null)).body;
  const auditLog = async () =>
    expectStatus(
      await app.get<{ items: Body[] }>(`/audit/events?after=${after}&limit=500`, USERS.auditor),
      200,
    ).body.items.filter((e) => ours.has(e.streamId.replace('changeRequest-', '')));
  const received = () => (receiver.bodies() as Body[]).filter((b) => ours.has(b.subject.id));
  /** The receiver has the newest event of this suite's changes. */
  const deliveredAll = async () => {
    const newest = (await auditLog()).at(-1);
    return newest !== undefined && received().at(-1)?.eventId === newest.eventId;
  };
  /** Until health names this event as the one the receiver refuses. */
  const untilRefused = (eventId: string, what: string) =>
    until(async () => (await health()).webhook?.failing?.eventId === eventId, what);
  const submitOurs = async (title: string) => {
    const { id } = await submit(app, normalChange('low', { title }));
    ours.add(id);
    return id;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-webhooks-e2e-'));
    receiver = await startWebhookReceiver();
    app = await start();
    after = await app.store.headPosition();
  });
  afterAll(async () => {
    await app.close();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends what the commands recorded, as GET /audit/events shows it, with a signature the receiver can check', async () => {
    const id = await submitOurs('Move VM traffic to VLAN 20');
    await reviewAll(app, id);
    expectStatus(await app.post(`/changes/${id}/approve`, { comment: 'go' }, USERS.lead), 200);
    await until(deliveredAll, 'every event delivered');

    const audit = await auditLog();
    expect(received().map(({ subject: _subject, ...event }) => event)).toEqual(audit);
    // ...and as the store holds them (the audit view and the webhook share their mapping)
    const stored = await app.eventsOf(id);
    expect(
      received().map((b) => [b.eventId, b.position, b.revision, b.type, b.actor, b.data, b.hash]),
    ).toEqual(
      stored.map((e) => [
        e.eventId,
        e.position.toString(),
        Number(e.revision),
        e.type,
        e.metadata.actor,
        e.data,
        (e.metadata as { hash?: string }).hash,
      ]),
    );
    expect(stored.every((e) => typeof (e.metadata as { hash?: string }).hash === 'string')).toBe(true);
    // each with the change as it stood right after it
    expect(received().map((b) => [b.type, b.subject])).toEqual(
      ['in-review', 'in-review', 'in-review', 'in-review', 'awaiting-approval', 'approved'].map(
        (status, i) => [
          audit[i].type,
          {
            kind: 'change-request',
            id,
            title: 'Move VM traffic to VLAN 20',
            changeType: 'normal',
            status,
            riskLevel: 'low',
            version: i + 1,
          },
        ],
      ),
    );

    expect(received().map((b) => b.type)).toEqual([
      'ChangeSubmitted',
      'ReviewRecorded',
      'ReviewRecorded',
      'ReviewRecorded',
      'ReviewsCompleted',
      'ChangeApproved',
    ]);
    const now = Math.floor(Date.now() / 1000);
    const deliveries = receiver.deliveries.filter((d) => d.body.includes(`"changeRequest-${id}"`));
    expect(deliveries).toHaveLength(6);
    for (const delivery of deliveries) {
      const signature = delivery.headers[WEBHOOK_SIGNATURE_HEADER] as string;
      expect(verifyWebhookSignature(SECRET, signature, delivery.body, now)).toBe(true);
    }
    const status = await health();
    expect(status).toMatchObject({ status: 'ok', webhook: { failing: null } });
    expect(JSON.stringify(status)).not.toContain('receiver-secret');
  });

  it('a refusing receiver holds up no command; health names the refused event, and it is sent once the receiver takes it', async () => {
    const before = received().length;
    receiver.answer(() => 503);
    const id = await submitOurs('Patch pve3');
    const [submitted] = await app.eventsOf(id);
    await untilRefused(submitted.eventId, 'its submission refused');
    // commands go on meanwhile
    expectStatus(await app.post(`/changes/${id}/cancel`, { reason: 'not needed' }), 200);
    expect(await health()).toMatchObject({
      status: 'ok',
      webhook: { failing: { eventId: submitted.eventId, lastError: 'HTTP 503' } },
    });

    const refusedUntil = receiver.bodies().length;
    receiver.answer(() => 204);
    await until(deliveredAll, 'the backlog delivered');
    const sent = received().slice(before);
    // the refused event as often as it was tried, then the rest once each, in order
    expect(new Set(sent.slice(0, -1).map((b) => b.eventId))).toEqual(new Set([submitted.eventId]));
    expect(sent.at(-1)).toMatchObject({ type: 'ChangeCancelled', subject: { id } });
    // what the receiver took: the refused event first, then the cancellation, each once
    const [, cancelled] = await app.eventsOf(id);
    const accepted = (receiver.bodies().slice(refusedUntil) as Body[]).filter((b) => ours.has(b.subject.id));
    expect(accepted.map((b) => b.eventId)).toEqual([submitted.eventId, cancelled.eventId]);
    expect((await health()).webhook?.failing).toBeNull();
  });

  const whenCliReachesEvents = cliBuilt && cliReachesEvents ? it : it.skip;
  whenCliReachesEvents(
    'an event the receiver keeps refusing is given up with npm run webhook:skip; the service moves on to the next',
    async () => {
      await until(deliveredAll, 'caught up');
      const id = await submitOurs('Refused for good');
      const [refused] = await app.eventsOf(id);
      receiver.answer((d) => ((JSON.parse(d.body) as Body).eventId === refused.eventId ? 400 : 204));
      await untilRefused(refused.eventId, 'its delivery refused');
      const position = (await health()).webhook!.failing!.position;
      // a position past the log's end would swallow events not written yet: refused
      const head = await app.store.headPosition();
      const tooFar = await runCliSettled(app.config, ['webhook-skip', '--through', String(head + 10n)]);
      expect(tooFar).toMatchObject({
        code: 1,
        stderr: expect.stringContaining('past the end of the event log'),
      });
      const skipped = await runCliSettled(app.config, ['webhook-skip', '--through', position]);
      expect(skipped.code).toBe(0);
      expect(skipped.stderr).toContain(`up to ${position} are given up (not sent)`);
      await until(async () => (await health()).webhook?.failing === null, 'the refused event given up');
      const next = await submitOurs('After the skip');
      await until(deliveredAll, 'the next change delivered');
      const accepted = received().filter((b) => b.subject.id === id || b.subject.id === next);
      // the refused event only as refused attempts, then the next change's submission
      expect(accepted.at(-1)).toMatchObject({ type: 'ChangeSubmitted', subject: { id: next } });
      expect(new Set(accepted.slice(0, -1).map((b) => b.eventId))).toEqual(new Set([refused.eventId]));
      // once more: nothing left to skip
      const again = await runCliSettled(app.config, ['webhook-skip', '--through', position]);
      expect(again).toMatchObject({ code: 0, stderr: expect.stringContaining('nothing skipped') });
      receiver.answer(() => 204);
    },
  );

  it('after a restart goes on where it left off: nothing sent twice, nothing left out', async () => {
    await until(deliveredAll, 'caught up');
    const before = received().length;
    await app.close();
    app = await start();
    const id = await submitOurs('After the restart');
    await until(deliveredAll, 'the new event delivered');
    expect(
      received()
        .slice(before)
        .map((b) => [b.type, b.subject.id]),
    ).toEqual([['ChangeSubmitted', id]]);
  });

  it('an event recorded but not yet taken when the service stops is sent after the restart, once', async () => {
    await until(deliveredAll, 'caught up');
    receiver.answer(() => 503);
    const id = await submitOurs('Pending at the shutdown');
    const [pending] = await app.eventsOf(id);
    await untilRefused(pending.eventId, 'its delivery refused');
    await app.close();
    const refusedUntil = receiver.bodies().length;
    receiver.answer(() => 204);
    app = await start();
    const next = await submitOurs('After that restart');
    await until(deliveredAll, 'both delivered');
    const [recordedAfter] = await app.eventsOf(next);
    const accepted = (receiver.bodies().slice(refusedUntil) as Body[]).filter((b) => ours.has(b.subject.id));
    expect(accepted.map((b) => b.eventId)).toEqual([pending.eventId, recordedAfter.eventId]);
  });
});
