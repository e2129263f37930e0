import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { SqliteEventStore } from '@changeledger/event-store';
import {
  toWebhookPayload,
  WebhookCheckpoints,
  WebhookDispatcher,
  WebhookSubjects,
} from '@changeledger/webhooks';
import { collectGarbage, progress, round, sampleEvent } from './bench-util';

const SECRET = 'bench-webhook-secret-0123456789abcdef';
/** Events per round; store and baseline alternate, after one warm-up round of each. */
const EVENTS = 2_000;
const ROUNDS = 3;

/** A receiver on a loopback port that accepts everything; `arrived` resolves at `count` requests. */
const startReceiver = async () => {
  let received = 0;
  let waiter: { count: number; resolve: () => void } | undefined;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(204).end();
      received++;
      if (waiter && received >= waiter.count) waiter.resolve();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    reset: () => {
      received = 0;
    },
    arrived: (count: number) =>
      new Promise<void>((resolve) => {
        if (received >= count) return resolve();
        waiter = { count, resolve };
      }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

export interface WebhookFigures {
  events: number;
  deliveriesPerSecond: number;
  baselinePostsPerSecond: number;
  ratio: number;
  rounds: { deliveriesPerSecond: number; baselinePostsPerSecond: number }[];
}

/**
 * Webhook deliveries from the log to a receiver on this machine, one at a time as the dispatcher
 * sends them (each awaits its answer: order), against the baseline: the same bodies, made before
 * the timer starts, POSTed one after another with the same HTTP client (undici's `request`) to
 * the same receiver, without the signature headers and the timeout. The difference is the
 * dispatcher's own work: reading the log, the body, its signature, its timeout and the checkpoint.
 */
export const benchWebhookDelivery = async (): Promise<WebhookFigures> => {
  const dir = mkdtempSync(join(tmpdir(), 'changeledger-bench-webhook-'));
  const receiver = await startReceiver();
  try {
    const rounds: { deliveriesPerSecond: number; baselinePostsPerSecond: number }[] = [];
    for (let r = 0; r <= ROUNDS; r++) {
      const events = new SqliteEventStore(join(dir, `events-${r}.sqlite`));
      for (let i = 0; i < EVENTS; i += 100) {
        await events.append(
          `changeRequest-CHG-${String(i).padStart(6, '0')}`,
          Array.from({ length: 100 }, (_, j) => sampleEvent(i + j)),
          'no-stream',
        );
      }
      const recorded = await events.readAll({ after: 0n, limit: EVENTS });
      const subjects = new WebhookSubjects(events);
      const bodies: string[] = [];
      for (const e of recorded) bodies.push(JSON.stringify(toWebhookPayload(e, await subjects.after(e))));

      // baseline
      receiver.reset();
      collectGarbage();
      let started = performance.now();
      const agent = new Agent({ keepAliveTimeout: 30_000 });
      for (const body of bodies) {
        const response = await request(receiver.url, {
          dispatcher: agent,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await response.body.dump();
      }
      const baselineSeconds = (performance.now() - started) / 1000;
      await agent.close();

      // the dispatcher, from the start of this log
      receiver.reset();
      const checkpoints = new WebhookCheckpoints(join(dir, `webhooks-${r}.sqlite`));
      checkpoints.set('webhook', 0n, new Date());
      const dispatcher = new WebhookDispatcher(events, {
        target: { url: receiver.url, secret: SECRET },
        checkpoints,
      });
      collectGarbage();
      started = performance.now();
      await dispatcher.start();
      await receiver.arrived(EVENTS);
      const seconds = (performance.now() - started) / 1000;
      await dispatcher.stop();
      checkpoints.close();
      await events.close();

      const figures = {
        deliveriesPerSecond: perSecond(EVENTS / seconds),
        baselinePostsPerSecond: perSecond(EVENTS / baselineSeconds),
      };
      progress(
        `webhooks ${r === 0 ? 'warm-up' : `round ${r}`}: ${figures.deliveriesPerSecond} deliveries/s, baseline ${figures.baselinePostsPerSecond} posts/s`,
      );
      if (r > 0) rounds.push(figures);
    }
    const total = (key: 'deliveriesPerSecond' | 'baselinePostsPerSecond') =>
      (EVENTS * ROUNDS) / rounds.reduce((s, r) => s + EVENTS / r[key], 0);
    const deliveriesPerSecond = perSecond(total('deliveriesPerSecond'));
    const baselinePostsPerSecond = perSecond(total('baselinePostsPerSecond'));
    return {
      events: EVENTS * ROUNDS,
      deliveriesPerSecond,
      baselinePostsPerSecond,
      ratio: round(deliveriesPerSecond / baselinePostsPerSecond, 3),
      rounds,
    };
  } finally {
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
};

/** Whole events per second. */
const perSecond = (n: number) => round(n, 0);
