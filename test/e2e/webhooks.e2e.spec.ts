import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { verifyWebhookSignature, WEBHOOK_SIGNATURE_HEADER } from '@changeledger/webhooks';
import { startWebhookReceiver, type WebhookReceiver } from '../../libs/webhooks/src/testing/webhook-receiver';
import { AppHarness, USERS } from './support/app-harness';
import { expectStatus, normalChange, reviewAll, submit } from './support/change-fixtures';

const SECRET = 'e2e-webhook-secret-0123456789abcdef';

const until = async (condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

interface Health {
  status: string;
  webhook: {
    target: string;
    deliveredThrough: string | null;
    failing: { attempts: number; lastError: string; eventId: string } | null;
  } | null;
}

describe('webhooks: every recorded event sent to WEBHOOK_URL, signed, in order', () => {
  let dir: string;
  let receiver: WebhookReceiver;
  let app: AppHarness;
  const start = () =>
    AppHarness.start({ WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: SECRET }, { dataDir: dir });
  const health = async () => (await app.get<Health>('/health', null)).body;
  const auditLog = async () =>
    expectStatus(
      await app.get<{ items: Record<string, unknown>[] }>('/audit/events?limit=500', USERS.auditor),
      200,
    ).body.items;
  /** The receiver has the log's newest event (positions are not compared: on EventStoreDB the head may be a counter's). */
  const deliveredAll = async () => {
    const newest = (await auditLog()).at(-1);
    return newest !== undefined && receiver.bodies().at(-1)?.eventId === newest.eventId;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changeledger-webhooks-e2e-'));
    receiver = await startWebhookReceiver();
    app = await start();
  });
  afterAll(async () => {
    await app.close();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends what the commands recorded, as GET /audit/events shows it, with a signature the receiver can check', async () => {
    const { id } = await submit(app, normalChange('low', { title: 'Move VM traffic to VLAN 20' }));
    await reviewAll(app, id);
    expectStatus(await app.post(`/changes/${id}/approve`, { comment: 'go' }, USERS.lead), 200);
    await until(deliveredAll, 'every event delivered');

    const audit = await auditLog();
    expect(receiver.bodies()).toEqual(
      audit.map((event) => ({ ...event, subject: { kind: 'change-request', id } })),
    );
    expect(receiver.bodies().map((b) => b.type)).toEqual([
      'ChangeSubmitted',
      'ReviewRecorded',
      'ReviewRecorded',
      'ReviewRecorded',
      'ReviewsCompleted',
      'ChangeApproved',
    ]);
    const now = Math.floor(Date.now() / 1000);
    for (const delivery of receiver.deliveries) {
      expect(
        verifyWebhookSignature(
          SECRET,
          delivery.headers[WEBHOOK_SIGNATURE_HEADER] as string,
          delivery.body,
          now,
        ),
      ).toBe(true);
    }
    expect(await health()).toMatchObject({
      status: 'ok',
      webhook: { target: new URL(receiver.url).origin, failing: null },
    });
  });

  it('a refusing receiver holds up no command; health names the refused event, and it is sent once the receiver takes it', async () => {
    const before = receiver.deliveries.length;
    receiver.answer(() => 503);
    const { id } = await submit(app, normalChange('low', { title: 'Patch pve3' }));
    await until(async () => ((await health()).webhook?.failing?.attempts ?? 0) >= 1, 'a refused delivery');
    // commands go on meanwhile
    expectStatus(await app.post(`/changes/${id}/cancel`, { reason: 'not needed' }), 200);
    const refused = await health();
    expect(refused).toMatchObject({ status: 'ok', webhook: { failing: { lastError: 'HTTP 503' } } });
    const [submitted] = await app.eventsOf(id);
    expect(refused.webhook?.failing?.eventId).toBe(submitted.eventId);

    receiver.answer(() => 204);
    await until(deliveredAll, 'the backlog delivered');
    const sent = receiver.bodies().slice(before);
    // the refused event as often as it was tried, then the rest once each, in order
    expect(new Set(sent.slice(0, -1).map((b) => b.eventId))).toEqual(new Set([submitted.eventId]));
    expect(sent.at(-1)).toMatchObject({ type: 'ChangeCancelled', subject: { id } });
    expect((await health()).webhook?.failing).toBeNull();
  });

  it('after a restart goes on where it left off: nothing sent twice, nothing left out', async () => {
    await until(deliveredAll, 'caught up');
    const before = receiver.deliveries.length;
    await app.close();
    app = await start();
    const { id } = await submit(app, normalChange('low', { title: 'After the restart' }));
    await until(deliveredAll, 'the new event delivered');
    expect(
      receiver
        .bodies()
        .slice(before)
        .map((b) => [b.type, (b.subject as { id: string }).id]),
    ).toEqual([['ChangeSubmitted', id]]);
  });
});
