import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedDelivery {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** When it arrived (performance.now()). */
  readonly at: number;
}

/** What the receiver does with the n-th delivery (0-based): answer with a status (later), or never. */
export type Responder = (
  delivery: ReceivedDelivery,
  index: number,
) =>
  | number
  | { readonly status: number; readonly afterMs: number; readonly headers?: Record<string, string> }
  | 'hang';

/**
 * A webhook receiver on a loopback port (a fake of the outside system the service calls): it
 * records every request and answers as told.
 */
export const startWebhookReceiver = async (respond: Responder = () => 204, port = 0) => {
  const deliveries: ReceivedDelivery[] = [];
  const hanging: ServerResponse[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  let responder = respond;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const delivery = {
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: performance.now(),
      };
      const index = deliveries.push(delivery) - 1;
      const answer = responder(delivery, index);
      const reply = (status: number, headers: Record<string, string> = {}) =>
        response.writeHead(status, { location: 'http://127.0.0.1:9/elsewhere', ...headers }).end();
      if (answer === 'hang') hanging.push(response);
      else if (typeof answer === 'number') reply(answer);
      else setTimeout(() => reply(answer.status, answer.headers), answer.afterMs);
      for (const waiter of waiters.filter((w) => deliveries.length >= w.count)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: listening } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${listening}/hooks/changeledger?token=receiver-secret`,
    deliveries,
    /** The parsed bodies of every request so far. */
    bodies: () => deliveries.map((d) => JSON.parse(d.body) as Record<string, unknown>),
    answer: (next: Responder) => {
      responder = next;
    },
    /** Resolves once `count` requests have arrived in all (rejects after `timeoutMs`). */
    received: (count: number, timeoutMs = 10_000) =>
      new Promise<void>((resolve, reject) => {
        if (deliveries.length >= count) return resolve();
        const timer = setTimeout(
          () => reject(new Error(`${deliveries.length} of ${count} deliveries arrived in ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      }),
    close: async () => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};

export type WebhookReceiver = Awaited<ReturnType<typeof startWebhookReceiver>>;
