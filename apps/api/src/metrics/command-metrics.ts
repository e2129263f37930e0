import { Injectable } from '@nestjs/common';
import { toProblem } from '../http/problem-details.filter';
import type { MetricFamily, Sample } from './prometheus-text';

/** Upper bounds (seconds) of the command-duration histogram's buckets. */
export const COMMAND_SECONDS_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
] as const;

interface Timing {
  /** Per bucket: how many took at most its bound (not yet cumulative). */
  readonly counts: number[];
  sum: number;
  count: number;
}

/**
 * What this process's command handler decided: how many per command and outcome (`accepted`,
 * `replayed` for a repeat found in the change's events, or the problem code of a refusal or
 * failure), and how long each took. Requests refused before (a DTO's 400, a 401 or 403 of the
 * guard) and repeats answered from the Idempotency-Key store decide nothing and are not counted.
 * Kept in memory from the start of the process, as Prometheus counters are.
 */
@Injectable()
export class CommandMetrics {
  private readonly outcomes = new Map<string, Map<string, number>>();
  private readonly timings = new Map<string, Timing>();

  /** `error`: what the command threw, if it did (its problem code is the outcome). */
  record(
    command: string,
    seconds: number,
    result: { replayed?: boolean } | undefined,
    error?: unknown,
  ): void {
    const outcome = error !== undefined ? toProblem(error).code : result?.replayed ? 'replayed' : 'accepted';
    let byOutcome = this.outcomes.get(command);
    if (!byOutcome) this.outcomes.set(command, (byOutcome = new Map()));
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
    let timing = this.timings.get(command);
    if (!timing) {
      timing = { counts: COMMAND_SECONDS_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.timings.set(command, timing);
    }
    const bucket = COMMAND_SECONDS_BUCKETS.findIndex((bound) => seconds <= bound);
    if (bucket >= 0) timing.counts[bucket] += 1;
    timing.sum += seconds;
    timing.count += 1;
  }

  families(): MetricFamily[] {
    const outcomes: Sample[] = [];
    for (const [command, byOutcome] of [...this.outcomes].sort(([a], [b]) => a.localeCompare(b))) {
      for (const [outcome, value] of [...byOutcome].sort(([a], [b]) => a.localeCompare(b))) {
        outcomes.push({ labels: { command, outcome }, value });
      }
    }
    const durations: Sample[] = [];
    for (const [command, timing] of [...this.timings].sort(([a], [b]) => a.localeCompare(b))) {
      let cumulative = 0;
      COMMAND_SECONDS_BUCKETS.forEach((bound, i) => {
        cumulative += timing.counts[i];
        durations.push({ suffix: '_bucket', labels: { command, le: String(bound) }, value: cumulative });
      });
      durations.push({ suffix: '_bucket', labels: { command, le: '+Inf' }, value: timing.count });
      durations.push({ suffix: '_sum', labels: { command }, value: timing.sum });
      durations.push({ suffix: '_count', labels: { command }, value: timing.count });
    }
    return [
      {
        name: 'changeledger_commands_total',
        help: 'Commands decided by this process, by command and outcome (accepted, replayed, or the problem code).',
        type: 'counter',
        samples: outcomes,
      },
      {
        name: 'changeledger_command_duration_seconds',
        help: 'How long commands took in this process, from loading the stream to the stored append (or the refusal).',
        type: 'histogram',
        samples: durations,
      },
    ];
  }
}
