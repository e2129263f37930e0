import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import type { NewEvent } from '@changeledger/event-store';

export const percentile = (sorted: number[], p: number): number => {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
};

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export const machine = () => ({
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  memoryGiB: round(totalmem() / 2 ** 30, 1),
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
});

/** One line per phase on stderr, so stdout stays the JSON summary. */
export const progress = (message: string) => process.stderr.write(`[bench] ${message}\n`);

/**
 * Writes the page cache's dirty pages out (sync(1)) before a timed phase, so that it is not
 * charged for the writeback of what the phase before it wrote (a rebuild right after writing a
 * gigabyte of events, a baseline right after a rebuild wrote its read models).
 */
export const flushPageCache = () => {
  try {
    execFileSync('sync');
  } catch {
    // no sync(1) here (not Linux or macOS): timed as it comes
  }
};

/**
 * A full garbage collection before a timed phase (`npm run bench` runs node with --expose-gc),
 * so that the phase is not charged for collecting or promoting what was made to set it up (the
 * events an append benchmark is about to append).
 */
export const collectGarbage = () => (globalThis as { gc?: () => void }).gc?.();

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux nearly always). */
const clockTicks = (() => {
  let ticks: number | undefined;
  return () => {
    if (ticks === undefined) {
      try {
        ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
      } catch {
        ticks = 100;
      }
    }
    return ticks;
  };
})();

/**
 * The CPU time (µs, user + system) each thread of a process has used so far, by thread id, from
 * /proc (Linux); undefined where there is no /proc. Ticks of 10 ms: meant for windows of seconds.
 */
export const threadCpuMicros = (pid: number): Map<number, number> | undefined => {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const times = new Map<number, number>();
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // after the command name in parentheses: state is field 3, utime 14 and stime 15
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      times.set(Number(tid), ((Number(fields[11]) + Number(fields[12])) * 1e6) / clockTicks());
    } catch {
      // a thread that ended since the listing: its time is not counted
    }
  }
  return times;
};

/** An implementation step as the benches append it (about the size of a real one). */
export const sampleEvent = (sequence = 1): NewEvent => ({
  eventId: randomUUID(),
  type: 'ImplementationStepRecorded',
  data: {
    sequence,
    description: 'Drained pve1 and moved its VMs to pve2 before changing the bridge VLAN',
    by: { id: 'u-ivan', name: 'Ivan Implementer' },
    at: new Date().toISOString(),
  },
  metadata: {
    actor: { id: 'u-ivan', name: 'Ivan Implementer', roles: ['implementer'] },
    occurredAt: new Date().toISOString(),
    correlationId: randomUUID(),
    causationId: randomUUID(),
    schemaVersion: 1,
  },
});
