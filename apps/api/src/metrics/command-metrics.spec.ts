import { DomainError } from '@changeledger/domain';
import { ConcurrencyError } from '@changeledger/event-store';
import { COMMAND_SECONDS_BUCKETS, CommandMetrics } from './command-metrics';

describe('CommandMetrics', () => {
  it('counts commands by outcome: accepted, replayed, or the problem code of what they threw', () => {
    const metrics = new CommandMetrics();
    metrics.record('ApproveChange', 0.002, { replayed: false });
    metrics.record('ApproveChange', 0.003, { replayed: true });
    metrics.record('ApproveChange', 0.001, undefined, new DomainError('INVALID_STATE', 'not in approval'));
    metrics.record('ApproveChange', 0.001, undefined, new ConcurrencyError('changeRequest-CHG-001', 3n, 4n));
    metrics.record('SubmitChange', 0.004, { replayed: false });
    metrics.record('SubmitChange', 0.004, undefined, new Error('disk on fire'));
    const [outcomes] = metrics.families();
    expect(outcomes).toMatchObject({ name: 'changeledger_commands_total', type: 'counter' });
    expect(outcomes.samples).toEqual([
      { labels: { command: 'ApproveChange', outcome: 'accepted' }, value: 1 },
      { labels: { command: 'ApproveChange', outcome: 'CONCURRENCY_CONFLICT' }, value: 1 },
      { labels: { command: 'ApproveChange', outcome: 'INVALID_STATE' }, value: 1 },
      { labels: { command: 'ApproveChange', outcome: 'replayed' }, value: 1 },
      { labels: { command: 'SubmitChange', outcome: 'accepted' }, value: 1 },
      { labels: { command: 'SubmitChange', outcome: 'INTERNAL' }, value: 1 },
    ]);
  });

  it('keeps a cumulative histogram of durations per command, with +Inf, sum and count', () => {
    const metrics = new CommandMetrics();
    for (const seconds of [0.0005, 0.001, 0.004, 0.04, 7]) metrics.record('StartImplementation', seconds, {});
    const [, durations] = metrics.families();
    expect(durations).toMatchObject({ name: 'changeledger_command_duration_seconds', type: 'histogram' });
    const buckets = durations.samples.filter((s) => s.suffix === '_bucket');
    expect(buckets.map((b) => b.labels!.le)).toEqual([...COMMAND_SECONDS_BUCKETS.map(String), '+Inf']);
    const at = (le: string) => buckets.find((b) => b.labels!.le === le)!.value;
    expect([at('0.001'), at('0.0025'), at('0.005'), at('0.05'), at('5'), at('+Inf')]).toEqual([
      2, 2, 3, 4, 4, 5,
    ]);
    expect(durations.samples.find((s) => s.suffix === '_count')!.value).toBe(5);
    expect(durations.samples.find((s) => s.suffix === '_sum')!.value).toBeCloseTo(7.0455, 6);
  });
});
