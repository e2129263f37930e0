import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { SqliteEventStore } from '@changeledger/event-store';
import { signToken } from '@changeledger/platform';
import { normalChange } from './support/change-fixtures';
import { writeRandomLifecycles } from '../support/random-lifecycles';
import { builtFile, isBuilt } from '../support/built';

const MAIN = builtFile('apps/api/src/main.js');
const SECRET = 'shutdown-test-secret-long-enough-for-hs256-0000';
// The real process is needed for real signals; it runs the build (CI builds before testing).
const whenBuilt = isBuilt(MAIN, 'shutdown e2e') ? it : it.skip;

/** The built server as a child process on a fresh data folder. */
const startBuiltServer = async (prefix: string, env: Record<string, string> = {}) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      DATA_DIR: dir,
      // The system picks a free port (a random one can be taken by another test's connections).
      PORT: '0',
      HOST: '127.0.0.1',
      AUTH_JWT_SECRET: SECRET,
      LOG_LEVEL: 'error',
      PROJECTOR_THREAD: 'true',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited early with ${code}: ${stderr}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      const listening = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(chunk.toString());
      if (listening) resolve(Number(listening[1]));
    });
  });
  const headers = {
    authorization: `Bearer ${await signToken({ sub: 'u1', name: 'U One', roles: ['requester'] }, SECRET)}`,
    'content-type': 'application/json',
  };
  const submit = async (title: string) => {
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/changes`, {
      method: 'POST',
      headers,
      body: JSON.stringify(normalChange('low', { title })),
    });
    return (await response.json()) as { id: string; position: string };
  };
  /**
   * A read of the changes that waits for `minPosition` (5 s), under way once this resolves (after
   * `pauseMs`: long enough for it to reach the server on a loaded machine before a SIGTERM, which
   * would refuse it): its answer in `answer`.
   */
  const readWaitingFor = async (minPosition: bigint, pauseMs = 1_500) => {
    const answer = fetch(`http://127.0.0.1:${port}/api/v1/changes?minPosition=${minPosition}`, { headers });
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    return { answer };
  };
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const stop = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  /** SIGTERM, and wait until the server says it is shutting down (its close has begun). */
  const terminate = async () => {
    child.kill('SIGTERM');
    const deadline = Date.now() + 5_000;
    while (!stdout.includes('SIGTERM: shutting down') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(stdout).toContain('SIGTERM: shutting down');
  };
  return {
    dir,
    /** What the server wrote so far. */
    output: () => ({ stdout, stderr }),
    base: `http://127.0.0.1:${port}/api/v1`,
    child,
    headers,
    submit,
    readWaitingFor,
    exited,
    stop,
    terminate,
  };
};

const typesOf = async (dir: string, id: string) => {
  const store = new SqliteEventStore(join(dir, 'events.sqlite'));
  try {
    return (await store.readStream(`changeRequest-${id}`)).map((e) => e.type);
  } finally {
    await store.close();
  }
};

describe('stopping the server', () => {
  whenBuilt(
    'SIGTERM finishes the request in flight, stops cleanly, and keeps every acknowledged write',
    async () => {
      const server = await startBuiltServer('changeledger-shutdown-');
      try {
        const created = await server.submit('before SIGTERM');
        // A read that waits for a position nobody has written yet: in flight when SIGTERM comes.
        const { answer: inFlight } = await server.readWaitingFor(BigInt(created.position) + 1000n);
        server.child.kill('SIGTERM');
        const answer = await inFlight;
        // answered, not cut off: it waited its 5 s (the projector runs through the drain), as ever
        expect(answer.status).toBe(503);
        expect(((await answer.json()) as { code: string }).code).toBe('PROJECTION_LAGGING');
        // main.ts re-raises the signal after closing, so the process ends by SIGTERM (not a crash code).
        const { code, signal } = await server.exited;
        expect(code === 0 || signal === 'SIGTERM').toBe(true);
        await expect(fetch(`${server.base}/health`)).rejects.toThrow();
        expect(await typesOf(server.dir, created.id)).toEqual(['ChangeSubmitted']);
      } finally {
        server.stop();
      }
    },
  );

  whenBuilt(
    'SIGTERM while a read waits for its minPosition: the projector runs through the drain, and the read is answered once the position is written',
    async () => {
      const server = await startBuiltServer('changeledger-shutdown-served-');
      try {
        const created = await server.submit('before SIGTERM');
        // (its 5 s also cover the SIGTERM, the write and its projection: a shorter pause)
        const { answer: inFlight } = await server.readWaitingFor(BigInt(created.position) + 1n, 1_000);
        await server.terminate();
        // what the read waits for, written by another process during the drain
        const store = new SqliteEventStore(join(server.dir, 'events.sqlite'));
        await writeRandomLifecycles(store, { seed: 5, count: 1, idOffset: 500 });
        await store.close();
        const answer = await inFlight;
        expect(answer.status).toBe(200);
        expect(answer.headers.get('connection')).toBe('close');
        // the change submitted before, and the one written during the drain
        const listed = ((await answer.json()) as { items: { id: string }[] }).items.map((c) => c.id);
        expect(listed).toHaveLength(2);
        expect(listed).toContain(created.id);
        const { code, signal } = await server.exited;
        expect(code === 0 || signal === 'SIGTERM').toBe(true);
      } finally {
        server.stop();
      }
    },
    20_000,
  );

  whenBuilt(
    'SIGTERM while a read waits for a position another process projects: answered, and the process exits though the client keeps its connection',
    async () => {
      // RUN_PROJECTOR=false: the read polls the stored checkpoint for its 5 s, after the server
      // began to close; its keep-alive connection (fetch keeps it) then held the close for ever
      const server = await startBuiltServer('changeledger-shutdown-elsewhere-', { RUN_PROJECTOR: 'false' });
      try {
        const inFlight = fetch(`${server.base}/changes?minPosition=1000`, { headers: server.headers });
        await new Promise((resolve) => setTimeout(resolve, 1_500)); // under way (it waits 5 s)
        const signalled = Date.now();
        server.child.kill('SIGTERM');
        const answer = await inFlight;
        expect(answer.status).toBe(503);
        expect(answer.headers.get('connection')).toBe('close');
        await answer.text();
        const { code, signal } = await server.exited;
        expect(code === 0 || signal === 'SIGTERM').toBe(true);
        expect(Date.now() - signalled).toBeLessThan(10_000);
      } finally {
        server.stop();
      }
    },
    20_000,
  );

  /** A raw keep-alive connection: what the server sends on it, and whether it has ended. */
  const rawConnection = async (base: string) => {
    const { hostname, port } = new URL(base);
    const socket = connect(Number(port), hostname);
    await once(socket, 'connect');
    let failure: Error | undefined;
    socket.on('error', (error) => (failure = error)); // a reset is a failed expectation, not a crash
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    const ended = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    const send = (path: string, authorization?: string, accept?: string) =>
      socket.write(
        `GET /api/v1${path} HTTP/1.1\r\nHost: ${hostname}\r\n` +
          (authorization ? `Authorization: ${authorization}\r\n` : '') +
          (accept ? `Accept: ${accept}\r\n` : '') +
          '\r\n',
      );
    return { send, received: () => received, ended, socket, failure: () => failure };
  };

  whenBuilt(
    'a request that arrives during the drain on a kept-alive connection is sent elsewhere: 503 problem+json with Retry-After',
    async () => {
      const server = await startBuiltServer('changeledger-shutdown-drain-', { RUN_PROJECTOR: 'false' });
      try {
        // A log whose export (about 18 MB), unread, cannot fit in the sockets' buffers (4 and 6 MB
        // at most by default on Linux): it is still being sent when the shutdown begins, so its
        // connection is busy, not idle, and is kept through the drain.
        const store = new SqliteEventStore(join(server.dir, 'events.sqlite'));
        const note = 'x'.repeat(1000);
        const metadata = {
          actor: { id: 'a1', name: 'A', roles: ['auditor'] },
          occurredAt: new Date().toISOString(),
          correlationId: randomUUID(),
          causationId: null,
          schemaVersion: 1,
        };
        for (let stream = 0; stream < 120; stream++) {
          const events = Array.from({ length: 100 }, () => ({
            eventId: randomUUID(),
            type: 'Filler',
            data: { note },
            metadata,
          }));
          await store.append(`filler-${stream}`, events, 'no-stream');
        }
        await store.close();
        const auditor = `Bearer ${await signToken({ sub: 'a1', name: 'A', roles: ['auditor'] }, SECRET)}`;
        const connection = await rawConnection(server.base);
        connection.socket.pause();
        // its answer's headers leave before the shutdown: the connection is kept alive after it
        connection.send('/audit/events', auditor, 'application/x-ndjson');
        await new Promise((resolve) => setTimeout(resolve, 500));
        await server.terminate();
        connection.send('/health'); // arrives while the server drains: answered after the export
        connection.socket.resume();
        await connection.ended;
        expect(connection.failure()).toBeUndefined();
        const answers = connection.received().split(/(?=HTTP\/1\.1 \d{3} )/);
        expect(answers).toHaveLength(2);
        const [exported, refused] = answers;
        expect(exported).toMatch(/^HTTP\/1\.1 200 /);
        expect(exported).not.toMatch(/connection: close/i);
        expect(exported.split('"type":"Filler"')).toHaveLength(12_001); // the whole export
        expect(refused).toMatch(/^HTTP\/1\.1 503 /);
        expect(refused).toMatch(/content-type: application\/problem\+json/i);
        expect(refused).toMatch(/retry-after: 1/i);
        expect(refused).toMatch(/connection: close/i);
        const body = JSON.parse(refused.slice(refused.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
        expect(body).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE', title: expect.any(String) });
        expect(body.detail).toMatch(/shutting down/);
        const { code, signal } = await server.exited;
        expect(code === 0 || signal === 'SIGTERM').toBe(true);
      } finally {
        server.stop();
      }
    },
    30_000,
  );

  whenBuilt(
    'the drain lasts SHUTDOWN_DRAIN_MS: a request still in flight then has its connection closed, and the process ends',
    async () => {
      const server = await startBuiltServer('changeledger-shutdown-deadline-', {
        RUN_PROJECTOR: 'false',
        SHUTDOWN_DRAIN_MS: '1000',
      });
      try {
        const connection = await rawConnection(server.base);
        connection.send('/changes?minPosition=1000', server.headers.authorization);
        await new Promise((resolve) => setTimeout(resolve, 1_000)); // under way (it waits 5 s)
        const signalled = Date.now();
        server.child.kill('SIGTERM');
        const endedAt = await connection.ended;
        // cut at the drain's end, before the read's own 5 s were up (it would have answered then,
        // about 4 s after the signal)
        expect(endedAt - signalled).toBeGreaterThanOrEqual(900);
        expect(endedAt - signalled).toBeLessThan(3_500);
        expect(connection.received()).toBe('');
        const { code, signal } = await server.exited;
        expect(code === 0 || signal === 'SIGTERM').toBe(true);
      } finally {
        server.stop();
      }
    },
    20_000,
  );

  whenBuilt('a second SIGTERM during the shutdown ends the process at once', async () => {
    const server = await startBuiltServer('changeledger-shutdown-twice-', {
      RUN_PROJECTOR: 'false',
      SHUTDOWN_DRAIN_MS: '60000',
    });
    try {
      const connection = await rawConnection(server.base);
      connection.send('/changes?minPosition=1000', server.headers.authorization);
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // under way (it waits 5 s)
      server.child.kill('SIGTERM');
      // (past the grace in which a second signal is the same one, forwarded: see the next test)
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(server.child.exitCode).toBeNull(); // still draining: the read waits its 5 s
      const again = Date.now();
      server.child.kill('SIGTERM');
      const { code } = await server.exited;
      expect(code).toBe(1);
      expect(Date.now() - again).toBeLessThan(2_000);
    } finally {
      server.stop();
    }
  });

  whenBuilt(
    'one Ctrl-C that arrives twice (npm run forwards the terminal’s SIGINT, which the process also gets) shuts down in good order',
    async () => {
      const server = await startBuiltServer('changeledger-shutdown-forwarded-', { RUN_PROJECTOR: 'false' });
      try {
        const inFlight = fetch(`${server.base}/changes?minPosition=1000`, { headers: server.headers });
        await new Promise((resolve) => setTimeout(resolve, 1_500)); // under way (it waits 5 s)
        server.child.kill('SIGINT');
        await new Promise((resolve) => setTimeout(resolve, 5));
        server.child.kill('SIGINT');
        // drained: the read is answered (its 5 s over), not cut off by an exit "at once"
        const answer = await inFlight;
        expect(answer.status).toBe(503);
        await answer.text();
        const { code, signal } = await server.exited;
        expect(code === 130 || signal === 'SIGINT').toBe(true);
        const { stdout, stderr } = server.output();
        expect(stdout).toContain('SIGINT: shutting down');
        expect(stderr).not.toContain('again');
      } finally {
        server.stop();
      }
    },
    20_000,
  );

  whenBuilt('SIGKILL right after answering loses no acknowledged write', async () => {
    const server = await startBuiltServer('changeledger-crash-');
    try {
      const acknowledged = await Promise.all(
        Array.from({ length: 40 }, (_, i) => server.submit(`crash ${i}`)),
      );
      server.child.kill('SIGKILL');
      await server.exited;
      for (const { id } of acknowledged) expect(await typesOf(server.dir, id)).toEqual(['ChangeSubmitted']);
    } finally {
      server.stop();
    }
  });
});

describe('the built server', () => {
  whenBuilt(
    'projects in a worker thread (the embedded default): each write is visible to a read with its minPosition',
    async () => {
      const server = await startBuiltServer('changeledger-thread-');
      try {
        for (let i = 0; i < 25; i++) {
          const created = await server.submit(`threaded ${i}`);
          const read = await fetch(`${server.base}/changes/${created.id}?minPosition=${created.position}`, {
            headers: server.headers,
          });
          expect(read.status).toBe(200);
          expect(((await read.json()) as { title: string }).title).toBe(`threaded ${i}`);
        }
        const health = (await (await fetch(`${server.base}/health`)).json()) as {
          projectionLag: number;
          projector: string;
        };
        expect(health).toMatchObject({ status: 'ok', projectionLag: 0, projector: 'thread' });
        server.child.kill('SIGTERM');
        const { code, signal } = await server.exited;
        expect(code === 0 || signal === 'SIGTERM').toBe(true);
      } finally {
        server.stop();
      }
    },
  );
});
