import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { signToken } from '@changeledger/platform';
import { percentile, progress, round, threadCpuMicros } from './bench-util';

export const SECRET = 'bench-secret-that-is-long-enough-for-hs256-000000';
const CLIENTS = 32;
/** Lifecycles per client before the measured ones (17 commands each). */
const WARMUP_LIFECYCLES = 3;
/**
 * Commands and the health baseline are measured in alternating rounds and pooled: on a shared
 * VM the speed of both drifts by a quarter within a minute, and one health window measured
 * after all the commands made the ratio swing with it (0.16–0.28 in one day of runs).
 */
const ROUNDS = 3;

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
  warmupCommands: number;
  lifecycles: number;
  commands: number;
  measuredSeconds: number;
  commandsPerSecond: number;
  commandLatencyMs: { p50: number; p99: number };
  healthRequestsPerSecond: number;
  healthLatencyMs: { p50: number; p99: number };
  ratioToHealth: number;
  /** Each round's figures, to show the spread behind the pooled ones. */
  rounds: { commandsPerSecond: number; commandP99Ms: number; healthRequestsPerSecond: number }[];
  /**
   * CPU time per request by thread (µs, from /proc; undefined without it), over the measured
   * rounds: what the two shared cores pay for a command and for a health request, which varies
   * far less from run to run than requests per second do. The projector thread is the server's
   * busiest thread besides the API's during the commands (the bench runs the default, a projector
   * thread). The last batch of a command round may be counted in the health round after it.
   */
  cpuMicrosPerCommand?: CpuPerRequest;
  cpuMicrosPerHealthRequest?: CpuPerRequest;
  errors: number;
}

interface CpuPerRequest {
  apiThread: number;
  projectorThread: number;
  otherServerThreads: number;
  loadGenerator: number;
  total: number;
}

/** CPU (µs) used by each server thread and by the load generator, and the requests it served. */
interface CpuUse {
  readonly threads: Map<number, number>;
  loadGenerator: number;
  requests: number;
}

const cpuUse = (): CpuUse => ({ threads: new Map(), loadGenerator: 0, requests: 0 });

/** Adds to `into` the CPU each server thread and this process (the load generator) use while `work` runs. */
const cpuWhile = async <T>(
  pid: number,
  into: CpuUse | undefined,
  requests: number,
  work: () => Promise<T>,
): Promise<T> => {
  if (!into) return work();
  const before = threadCpuMicros(pid);
  const own = process.cpuUsage();
  const result = await work();
  const after = threadCpuMicros(pid);
  const used = process.cpuUsage(own);
  if (before && after) {
    for (const [tid, micros] of after) {
      into.threads.set(tid, (into.threads.get(tid) ?? 0) + micros - (before.get(tid) ?? 0));
    }
    into.loadGenerator += used.user + used.system;
    into.requests += requests;
  }
  return result;
};

const perRequest = (
  pid: number,
  use: CpuUse,
  projectorTid: number | undefined,
): CpuPerRequest | undefined => {
  if (use.requests === 0 || use.threads.size === 0) return undefined;
  const per = (micros: number) => round(micros / use.requests, 1);
  const api = use.threads.get(pid) ?? 0;
  const projector = projectorTid === undefined ? 0 : (use.threads.get(projectorTid) ?? 0);
  const server = [...use.threads.values()].reduce((sum, micros) => sum + micros, 0);
  return {
    apiThread: per(api),
    projectorThread: per(projector),
    otherServerThreads: per(server - api - projector),
    loadGenerator: per(use.loadGenerator),
    total: per(server + use.loadGenerator),
  };
};

interface Timing {
  readonly start: number;
  readonly end: number;
}

/**
 * A closed loop: every client runs `warmup` rounds, then `measured` rounds, back to back. What is
 * measured is the window in which all clients are past their warm-up and none has run out of
 * work: the requests that end inside it, and their latency. So the figures are of a warm
 * server under the full load, without the clients' start in lockstep (all submitting at once,
 * with code V8 is still optimising on the same two cores: the first second of a run used to
 * hold nearly every request slower than 40 ms) and without the ramp-down, when fewer clients
 * are left.
 */
const steadyState = async (
  warmup: number,
  measured: number,
  runRound: (record: Timing[]) => Promise<void>,
) => {
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const timings: Timing[] = [];
      let warmedAt = 0;
      for (let i = 0; i < warmup + measured; i++) {
        await runRound(timings);
        if (i === warmup - 1) warmedAt = performance.now();
      }
      return { timings, warmedAt, doneAt: performance.now() };
    }),
  );
  const from = Math.max(...clients.map((c) => c.warmedAt));
  const to = Math.min(...clients.map((c) => c.doneAt));
  if (to <= from) throw new Error('no window with every client under load: measure more rounds');
  const latencies = clients
    .flatMap((c) => c.timings)
    .filter((t) => t.end >= from && t.end <= to)
    .map((t) => t.end - t.start)
    .sort((a, b) => a - b);
  const seconds = (to - from) / 1000;
  return { latencies, seconds, perSecond: latencies.length / seconds };
};

type Window = Awaited<ReturnType<typeof steadyState>>;

/** The requests of several windows as one measurement: all latencies, the summed time. */
const pooled = (windows: readonly Window[]): Window => {
  const latencies = windows.flatMap((w) => w.latencies).sort((a, b) => a - b);
  const seconds = windows.reduce((sum, w) => sum + w.seconds, 0);
  return { latencies, seconds, perSecond: latencies.length / seconds };
};

export const benchHttpLifecycles = async (lifecyclesPerClient = 24): Promise<HttpFigures> => {
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
    const call = async (
      method: string,
      path: string,
      as: string | null,
      body?: unknown,
      record?: Timing[],
    ) => {
      const started = performance.now();
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
      record?.push({ start: started, end: performance.now() });
      if (response.statusCode >= 400) {
        errors++;
        if (errors <= 3) progress(`unexpected ${response.statusCode} for ${method} ${path}: ${text}`);
      }
      return text;
    };
    const runLifecycle = async (record: Timing[]) => {
      const submitted = await call('POST', '/api/v1/changes', 'requester', SUBMISSION, record);
      const id = (JSON.parse(submitted) as { id: string }).id;
      for (const step of LIFECYCLE) await call(step.method, step.path(id), step.as, step.body, record);
    };

    const requestsPerLifecycle = LIFECYCLE.length + 1;
    const health = async (record: Timing[]) =>
      void (await call('GET', '/api/v1/health', null, undefined, record));
    const perRound = Math.ceil(lifecyclesPerClient / ROUNDS);
    const commandRounds: Window[] = [];
    const healthRounds: Window[] = [];
    const commandCpu = cpuUse();
    const healthCpu = cpuUse();
    const pid = server.pid!;
    // Round 0 warms up and is not counted: in runs that counted it, its commands and health
    // requests were a third slower than the later rounds' (V8 still compiling on the two cores).
    for (let round = 0; round <= ROUNDS; round++) {
      const warmup = round === 0 ? WARMUP_LIFECYCLES : 1;
      progress(
        `http: ${round === 0 ? 'warm-up round' : `round ${round}/${ROUNDS}`}: ${CLIENTS} clients × ${warmup} + ${perRound} normal-change lifecycles, then as many GET /api/v1/health`,
      );
      const sent = CLIENTS * (warmup + perRound) * requestsPerLifecycle;
      const commands = await cpuWhile(pid, round === 0 ? undefined : commandCpu, sent, () =>
        steadyState(warmup, perRound, runLifecycle),
      );
      const requests = await cpuWhile(pid, round === 0 ? undefined : healthCpu, sent, () =>
        steadyState(warmup * requestsPerLifecycle, perRound * requestsPerLifecycle, health),
      );
      if (round === 0) continue;
      commandRounds.push(commands);
      healthRounds.push(requests);
    }
    const commands = pooled(commandRounds);
    const baseline = pooled(healthRounds);
    const projectorTid = [...commandCpu.threads]
      .filter(([tid]) => tid !== pid)
      .sort((a, b) => b[1] - a[1])[0]?.[0];

    return {
      clients: CLIENTS,
      warmupCommands: CLIENTS * (WARMUP_LIFECYCLES + perRound + ROUNDS) * requestsPerLifecycle,
      lifecycles: CLIENTS * perRound * ROUNDS,
      commands: commands.latencies.length,
      measuredSeconds: round(commands.seconds),
      commandsPerSecond: round(commands.perSecond, 0),
      commandLatencyMs: {
        p50: round(percentile(commands.latencies, 50)),
        p99: round(percentile(commands.latencies, 99)),
      },
      healthRequestsPerSecond: round(baseline.perSecond, 0),
      healthLatencyMs: {
        p50: round(percentile(baseline.latencies, 50)),
        p99: round(percentile(baseline.latencies, 99)),
      },
      ratioToHealth: round(commands.perSecond / baseline.perSecond),
      rounds: commandRounds.map((c, i) => ({
        commandsPerSecond: round(c.perSecond, 0),
        commandP99Ms: round(percentile(c.latencies, 99)),
        healthRequestsPerSecond: round(healthRounds[i].perSecond, 0),
      })),
      cpuMicrosPerCommand: perRequest(pid, commandCpu, projectorTid),
      cpuMicrosPerHealthRequest: perRequest(pid, healthCpu, projectorTid),
      errors,
    };
  } finally {
    await pool.close();
    await stopServer(server);
    rmSync(dir, { recursive: true, force: true });
  }
};
