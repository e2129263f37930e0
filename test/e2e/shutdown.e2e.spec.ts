import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { SqliteEventStore } from '@changeledger/event-store';
import { signToken } from '@changeledger/platform';
import { normalChange } from './support/change-fixtures';

const MAIN = join(__dirname, '..', '..', 'dist', 'apps', 'api', 'src', 'main.js');
const SECRET = 'shutdown-test-secret-long-enough-for-hs256-0000';
// The real process is needed for a real SIGTERM; it runs the build (CI builds before testing).
const whenBuilt = existsSync(MAIN) ? it : it.skip;
if (!existsSync(MAIN))
  console.log('shutdown e2e skipped: dist/apps/api/src/main.js is missing (run `npm run build` first)');

describe('graceful shutdown on SIGTERM', () => {
  whenBuilt(
    'finishes the request in flight, stops cleanly, and keeps every acknowledged write',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'changeledger-shutdown-'));
      const port = 41_000 + Math.floor(Math.random() * 1000);
      const child = spawn(process.execPath, [MAIN], {
        env: {
          ...process.env,
          DATA_DIR: dir,
          PORT: String(port),
          HOST: '127.0.0.1',
          AUTH_JWT_SECRET: SECRET,
          LOG_LEVEL: 'error',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        await new Promise<void>((resolve, reject) => {
          child.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
          child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
        });
        const base = `http://127.0.0.1:${port}/api/v1`;
        const headers = {
          authorization: `Bearer ${await signToken({ sub: 'u1', name: 'U One', roles: ['requester'] }, SECRET)}`,
          'content-type': 'application/json',
        };
        const created = (await (
          await fetch(`${base}/changes`, { method: 'POST', headers, body: JSON.stringify(normalChange()) })
        ).json()) as {
          id: string;
          position: string;
        };
        // A read that waits for a position nobody has written yet: in flight when SIGTERM comes.
        const inFlight = fetch(`${base}/changes?minPosition=${BigInt(created.position) + 1000n}`, {
          headers,
        });
        await new Promise((resolve) => setTimeout(resolve, 200));
        const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
          child.once('exit', (code, signal) => resolve({ code, signal })),
        );
        child.kill('SIGTERM');
        const answer = await inFlight;
        expect(answer.status).toBe(503); // answered, not cut off: the projector stopped, the read could not wait
        expect(((await answer.json()) as { code: string }).code).toBe('PROJECTION_LAGGING');
        // Nest re-raises the signal after closing, so the process ends by SIGTERM (not a crash code).
        const { code, signal } = await exited;
        expect(code === 0 || signal === 'SIGTERM').toBe(true);
        await expect(fetch(`${base}/health`)).rejects.toThrow();
        const store = new SqliteEventStore(join(dir, 'events.sqlite'));
        expect((await store.readStream(`changeRequest-${created.id}`)).map((e) => e.type)).toEqual([
          'ChangeSubmitted',
        ]);
        await store.close();
      } finally {
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
    },
    30_000,
  );

  whenBuilt(
    'loses no acknowledged write when the process is killed (SIGKILL) right after answering',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'changeledger-crash-'));
      const port = 42_000 + Math.floor(Math.random() * 1000);
      const child = spawn(process.execPath, [MAIN], {
        env: {
          ...process.env,
          DATA_DIR: dir,
          PORT: String(port),
          HOST: '127.0.0.1',
          AUTH_JWT_SECRET: SECRET,
          LOG_LEVEL: 'error',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        await new Promise<void>((resolve, reject) => {
          child.once('exit', (code) => reject(new Error(`server exited early with ${code}`)));
          child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('listening') && resolve());
        });
        const headers = {
          authorization: `Bearer ${await signToken({ sub: 'u1', name: 'U One', roles: ['requester'] }, SECRET)}`,
          'content-type': 'application/json',
        };
        const acknowledged = await Promise.all(
          Array.from({ length: 40 }, async (_, i) => {
            const r = await fetch(`http://127.0.0.1:${port}/api/v1/changes`, {
              method: 'POST',
              headers,
              body: JSON.stringify(normalChange('low', { title: `crash ${i}` })),
            });
            return ((await r.json()) as { id: string }).id;
          }),
        );
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
        const store = new SqliteEventStore(join(dir, 'events.sqlite'));
        for (const id of acknowledged) {
          expect((await store.readStream(`changeRequest-${id}`)).map((e) => e.type)).toEqual([
            'ChangeSubmitted',
          ]);
        }
        await store.close();
      } finally {
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      }
    },
    30_000,
  );
});
