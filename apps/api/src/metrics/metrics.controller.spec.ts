import { type HealthReport, UNKNOWN_FIELDS } from '../health/health.service';
import { healthFamilies } from './metrics.controller';

const report = (overrides: Partial<HealthReport> = {}): HealthReport => ({
  status: 'ok',
  eventStore: 'up',
  readModels: 'up',
  projectionLag: 0,
  eventStorePosition: '42',
  readModelPosition: '42',
  projector: 'thread',
  projectorStalledSince: null,
  staleReadModels: [],
  webhook: null,
  ...overrides,
});
const names = (r: HealthReport) =>
  healthFamilies(r, Date.parse('2026-11-28T10:00:00.000Z')).map((f) => f.name);

describe('healthFamilies (the health report as Prometheus gauges)', () => {
  it('leaves out what is not known instead of reporting 0: positions of a store that is down, stalls and versions without the read models, a webhook not configured', () => {
    expect(names(report())).toEqual([
      'changeledger_event_store_up',
      'changeledger_read_models_up',
      'changeledger_event_store_position',
      'changeledger_read_model_position',
      'changeledger_projection_lag',
      'changeledger_projector',
      'changeledger_projector_stalled_seconds',
      'changeledger_stale_read_models',
    ]);
    expect(
      names(report({ readModels: 'down', readModelPosition: null, projectionLag: null, status: 'degraded' })),
    ).toEqual([
      'changeledger_event_store_up',
      'changeledger_read_models_up',
      'changeledger_event_store_position',
      'changeledger_projector',
    ]);
    // the read models answered, but the stall or the versions were not read in time
    const unread = (fields: ('projectorStalledSince' | 'staleReadModels')[]) =>
      names({ ...report(), [UNKNOWN_FIELDS]: new Set(fields) });
    expect(unread(['projectorStalledSince'])).not.toContain('changeledger_projector_stalled_seconds');
    expect(unread(['projectorStalledSince'])).toContain('changeledger_stale_read_models');
    expect(unread(['staleReadModels'])).not.toContain('changeledger_stale_read_models');
    expect(unread(['staleReadModels'])).toContain('changeledger_projector_stalled_seconds');
    expect(unread([])).toEqual(names(report()));
  });

  it('measures a stall and a refusing webhook receiver in seconds up to now', () => {
    const families = healthFamilies(
      report({
        projectorStalledSince: '2026-11-28T09:59:30.000Z',
        webhook: {
          deliveredThrough: '40',
          standingBy: false,
          lastDeliveredAt: '2026-11-28T09:00:00.000Z',
          failing: {
            since: '2026-11-28T09:58:00.000Z',
            attempts: 7,
            eventId: 'e-41',
            position: '41',
            lastError: 'HTTP 500',
          },
        },
      }),
      Date.parse('2026-11-28T10:00:00.000Z'),
    );
    const value = (name: string) => families.find((f) => f.name === name)?.samples[0]?.value;
    expect(value('changeledger_projector_stalled_seconds')).toBe(30);
    expect(value('changeledger_webhook_delivered_position')).toBe(40);
    expect(value('changeledger_webhook_failing_seconds')).toBe(120);
    expect(value('changeledger_webhook_failing_attempts')).toBe(7);
    expect(value('changeledger_webhook_standing_by')).toBe(0);
    expect(families.find((f) => f.name === 'changeledger_projector')!.samples).toEqual([
      { labels: { mode: 'main-thread' }, value: 0 },
      { labels: { mode: 'thread' }, value: 1 },
      { labels: { mode: 'standby' }, value: 0 },
      { labels: { mode: 'elsewhere' }, value: 0 },
      { labels: { mode: 'down' }, value: 0 },
    ]);
  });
});
