import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { signToken } from '@changeledger/platform';
import { percentile, progress, round } from './bench-util';

export const SECRET = 'bench-secret-that-is-long-enough-for-hs256-000000';
const CLIENTS = 32;

interface Step {
  readonly method: 'POST' | 'GET';
  readonly path: (id: string) => string;
  readonly as: string;
  readonly body?: unknown;
}

const criteria = {
  technical: { feasibility: 'ok', impactAssessment: 'small', riskEvaluation: 'acceptable' },
  business: { businessImpact: 'none', resourceRequirements: 'one engineer', timelineAlignment: 'fits' },
  security: { securityImplications: 'none', complianceRequirements: 'met', riskAssessment: 'low' },
};

const SUBMISSION = {
  type: 'normal',
  title: 'Reconfigure VLAN 20 on pve-cluster',
  description: 'Move the storage network to VLAN 20',
  reason: 'Separate storage traffic',
  expectedImpact: 'Short storage flaps',
  priority: 'medium',
  systemsAffected: ['pve1', 'pve2'],
  implementationPlan: ['Drain pve1', 'Change VLAN', 'Verify'],
  rollbackPlan: 'Restore interfaces file',
  testingPlan: 'ceph -s',
  risk: { level: 'low', potentialImpact: 'Storage outage', mitigation: 'One node at a time' },
  timeline: { proposedStart: '2026-12-01T22:00:00Z', estimatedDurationMinutes: 90 },
};

/** The 16 commands after submission that take a low-risk normal change to close. */
const LIFECYCLE: Step[] = [
  ...(['technical', 'business', 'security'] as const).map((kind) => ({
    method: 'POST' as const,
    path: (id: string) => `/api/v1/changes/${id}/reviews`,
    as: kind,
    body: { kind, verdict: 'approve', notes: 'ok', criteria: criteria[kind] },
  })),
  { method: 'POST', path: (id) => `/api/v1/changes/${id}/approve`, as: 'lead', body: {} },
  {
    method: 'POST',
    path: (id) => `/api/v1/changes/${id}/schedule`,
    as: 'implementer',
    body: {
      plannedStart: '2026-12-01T22:00:00Z',
      plannedEnd: '2026-12-01T23:00:00Z',
      maintenanceWindow: false,
    },
  },
  ...['backups-verified', 'rollback-plan-prepared', 'stakeholders-notified'].map((item) => ({
    method: 'POST' as const,
    path: (id: string) => `/api/v1/changes/${id}/checklist`,
    as: 'implementer',
    body: { item },
  })),
  { method: 'POST', path: (id) => `/api/v1/changes/${id}/start`, as: 'implementer', body: {} },
  {
    method: 'POST',
    path: (id) => `/api/v1/changes/${id}/steps`,
    as: 'implementer',
    body: { description: 'done' },
  },
  {
    method: 'POST',
    path: (id) => `/api/v1/changes/${id}/verification`,
    as: 'implementer',
    body: { functionalityTested: true, systemHealthVerified: true, logsChecked: true },
  },
  {
    method: 'POST',
    path: (id) => `/api/v1/changes/${id}/complete`,
    as: 'implementer',
    body: { outcome: 'successful' },
  },
  {
    method: 'POST',
    path: (id) => `/api/v1/changes/${id}/post-implementation-review`,
    as: 'implementer',
    body: { documentationUpdated: true, lessonsLearned: 'none', improvements: [] },
  },
  { method: 'POST', path: (id) => `/api/v1/changes/${id}/close`, as: 'implementer', body: {} },
];

export const startServer = async (
  dataDir: string,
  port: number,
  env: Record<string, string> = {},
): Promise<ChildProcess> => {
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_SERVER_NODE_OPTIONS?.split(' ').filter(Boolean) ?? []),
      join(__dirname, '..', 'apps', 'api', 'src', 'main.js'),
    ],
    {
      env: {
        ...process.env,
        DATA_DIR: dataDir,
        PORT: String(port),
        HOST: '127.0.0.1',
        AUTH_JWT_SECRET: SECRET,
        LOG_LEVEL: 'error',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('listening')) resolve();
    });
  });
  return child;
};

export const stopServer = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });

export interface HttpFigures {
  clients: number;
  lifecycles: number;
  commands: number;
  commandsPerSecond: number;
  commandLatencyMs: { p50: number; p99: number };
  healthRequestsPerSecond: number;
  healthLatencyMs: { p50: number; p99: number };
  ratioToHealth: number;
  errors: number;
}

export const benchHttpLifecycles = async (lifecyclesPerClient = 12): Promise<HttpFigures> => {
  const dir = mkdtempSync(join(tmpdir(), 'changeledger-bench-http-'));
  const port = 39_000 + Math.floor(Math.random() * 1000);
  const server = await startServer(dir, port);
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CLIENTS, pipelining: 1 });
  try {
    const roles: Record<string, string[]> = {
      requester: ['requester'],
      technical: ['technical-reviewer'],
      business: ['business-reviewer'],
      security: ['security-reviewer'],
      lead: ['infrastructure-lead'],
      implementer: ['implementer'],
    };
    const tokens: Record<string, string> = {};
    for (const [who, r] of Object.entries(roles)) {
      tokens[who] = await signToken({ sub: `bench-${who}`, name: `Bench ${who}`, roles: r }, SECRET);
    }
    let errors = 0;
    const call = async (method: string, path: string, as: string | null, body?: unknown) => {
      const started = process.hrtime.bigint();
      const response = await pool.request({
        method: method as 'GET',
        path,
        headers: {
          ...(as ? { authorization: `Bearer ${tokens[as]}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
      const text = await response.body.text();
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (response.statusCode >= 400) {
        errors++;
        if (errors <= 3) progress(`unexpected ${response.statusCode} for ${method} ${path}: ${text}`);
      }
      return { ms, text };
    };

    // Warm-up: JIT, SQLite page cache.
    progress('http: warm-up');
    for (let i = 0; i < 3; i++) await runLifecycle();

    progress(`http: ${CLIENTS} clients × ${lifecyclesPerClient} normal-change lifecycles`);
    const latencies: number[] = [];
    async function runLifecycle(record?: number[]) {
      const submitted = await call('POST', '/api/v1/changes', 'requester', SUBMISSION);
      record?.push(submitted.ms);
      const id = (JSON.parse(submitted.text) as { id: string }).id;
      for (const step of LIFECYCLE) {
        const r = await call(step.method, step.path(id), step.as, step.body);
        record?.push(r.ms);
      }
    }
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        for (let i = 0; i < lifecyclesPerClient; i++) await runLifecycle(latencies);
      }),
    );
    const commandSeconds = Number(process.hrtime.bigint() - started) / 1e9;

    progress('http: GET /api/v1/health baseline, same clients');
    const healthLatencies: number[] = [];
    const healthPerClient = Math.ceil(latencies.length / CLIENTS);
    const healthStarted = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        for (let i = 0; i < healthPerClient; i++)
          healthLatencies.push((await call('GET', '/api/v1/health', null)).ms);
      }),
    );
    const healthSeconds = Number(process.hrtime.bigint() - healthStarted) / 1e9;

    latencies.sort((a, b) => a - b);
    healthLatencies.sort((a, b) => a - b);
    const commandsPerSecond = latencies.length / commandSeconds;
    const healthPerSecond = healthLatencies.length / healthSeconds;
    return {
      clients: CLIENTS,
      lifecycles: CLIENTS * lifecyclesPerClient,
      commands: latencies.length,
      commandsPerSecond: round(commandsPerSecond, 0),
      commandLatencyMs: { p50: round(percentile(latencies, 50)), p99: round(percentile(latencies, 99)) },
      healthRequestsPerSecond: round(healthPerSecond, 0),
      healthLatencyMs: {
        p50: round(percentile(healthLatencies, 50)),
        p99: round(percentile(healthLatencies, 99)),
      },
      ratioToHealth: round(commandsPerSecond / healthPerSecond),
      errors,
    };
  } finally {
    await pool.close();
    await stopServer(server);
    rmSync(dir, { recursive: true, force: true });
  }
};
