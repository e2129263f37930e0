import { createHash, timingSafeEqual } from 'node:crypto';
import { Controller, Get, Header, Headers, Inject } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiProduces, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { APP_CONFIG, type AppConfig } from '@changeledger/platform';
import { Public } from '../auth/auth.guard';
import { AuthenticationError } from '../auth/jwt-verifier';
import { type HealthReport, HealthService } from '../health/health.service';
import { PROJECTOR_MODES } from '../read-models/read-position';
import { CommandMetrics } from './command-metrics';
import { type MetricFamily, PROMETHEUS_CONTENT_TYPE, renderPrometheus } from './prometheus-text';

const gauge = (name: string, help: string, value: number | null): MetricFamily[] =>
  value === null ? [] : [{ name, help, type: 'gauge', samples: [{ value }] }];

/** The health report as gauges (what cannot be known now is left out, not reported as 0). */
export const healthFamilies = (report: HealthReport, now: number): MetricFamily[] => {
  const failing = report.webhook?.failing ?? null;
  return [
    ...gauge(
      'changeledger_event_store_up',
      'Whether the event store answers (1) or not (0).',
      report.eventStore === 'up' ? 1 : 0,
    ),
    ...gauge(
      'changeledger_read_models_up',
      'Whether the read-model store answers (1) or not (0).',
      report.readModels === 'up' ? 1 : 0,
    ),
    ...gauge(
      'changeledger_event_store_position',
      'The log position of the newest stored event.',
      report.eventStorePosition === null ? null : Number(report.eventStorePosition),
    ),
    ...gauge(
      'changeledger_read_model_position',
      'The log position the read models have applied.',
      report.readModelPosition === null ? null : Number(report.readModelPosition),
    ),
    ...gauge(
      'changeledger_projection_lag',
      'How far the read models are behind the log, in log positions.',
      report.projectionLag,
    ),
    {
      name: 'changeledger_projector',
      help: 'Where the read models are projected (1 for the mode that holds): this process main thread, a worker thread, elsewhere, or down.',
      type: 'gauge',
      samples: PROJECTOR_MODES.map((mode) => ({
        labels: { mode },
        value: report.projector === mode ? 1 : 0,
      })),
    },
    // known only while the read-model store answers: left out, not 0, when it does not
    ...(report.readModels !== 'up'
      ? []
      : [
          ...gauge(
            'changeledger_projector_stalled_seconds',
            'For how long the projector has been failing to write the same events (0 when it is not).',
            report.projectorStalledSince === null
              ? 0
              : (now - Date.parse(report.projectorStalledSince)) / 1000,
          ),
          ...gauge(
            'changeledger_stale_read_models',
            'Read models written by another version of their projection (until projections:rebuild).',
            report.staleReadModels.length,
          ),
        ]),
    ...(report.webhook === null
      ? []
      : [
          ...gauge(
            'changeledger_webhook_delivered_position',
            'Every wanted event up to this log position has been accepted by the webhook receiver.',
            report.webhook.deliveredThrough === null ? null : Number(report.webhook.deliveredThrough),
          ),
          ...gauge(
            'changeledger_webhook_failing_seconds',
            'For how long the webhook receiver has been refusing the same event (0 when it is not).',
            failing === null ? 0 : (now - Date.parse(failing.since)) / 1000,
          ),
          ...gauge(
            'changeledger_webhook_failing_attempts',
            'How often the refused event has been sent (0 when none is refused).',
            failing?.attempts ?? 0,
          ),
        ]),
  ];
};

/** Once: computed on every scrape from two clocks it could move by a second (a false restart). */
const PROCESS_START_SECONDS = Math.round((Date.now() - process.uptime() * 1000) / 1000);

const processFamilies = (): MetricFamily[] => {
  const cpu = process.cpuUsage();
  return [
    ...gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', process.memoryUsage.rss()),
    {
      name: 'process_cpu_seconds_total',
      help: 'Total user and system CPU time spent in seconds.',
      type: 'counter',
      samples: [{ value: (cpu.user + cpu.system) / 1e6 }],
    },
    ...gauge(
      'process_start_time_seconds',
      'Start time of the process since the Unix epoch in seconds.',
      PROCESS_START_SECONDS,
    ),
  ];
};

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/**
 * Prometheus metrics: the health report as gauges, this process's commands by outcome and
 * duration, and the process's memory and CPU. No titles, ids or names in them. Public, as
 * `/health` is, unless METRICS_TOKEN is set: then only for `Authorization: Bearer <token>`
 * (the refusal counts show how the service is used, which an operator may not want to publish).
 */
@ApiTags('health')
@Controller('metrics')
export class MetricsController {
  /** The digest of METRICS_TOKEN, compared in constant time; undefined: public. */
  private readonly tokenDigest?: Buffer;

  constructor(
    private readonly health: HealthService,
    private readonly commands: CommandMetrics,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    if (config.metricsToken !== undefined) this.tokenDigest = sha256(config.metricsToken);
  }

  @Public()
  @Get()
  @Header('Content-Type', PROMETHEUS_CONTENT_TYPE)
  @Header('Cache-Control', 'no-store')
  @ApiProduces('text/plain')
  @ApiBearerAuth()
  @ApiOkResponse({ description: 'Prometheus text exposition format 0.0.4' })
  @ApiUnauthorizedResponse({
    description: 'METRICS_TOKEN is set and the request does not carry it as its bearer token',
  })
  async metrics(@Headers('authorization') authorization: string | undefined): Promise<string> {
    this.checkToken(authorization);
    const report = await this.health.report();
    return renderPrometheus([
      ...healthFamilies(report, Date.now()),
      ...this.commands.families(),
      ...processFamilies(),
    ]);
  }

  private checkToken(authorization: string | undefined) {
    if (this.tokenDigest === undefined) return;
    const token = authorization === undefined ? undefined : /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
    if (token === undefined) {
      throw new AuthenticationError(
        'the metrics need the metrics token (METRICS_TOKEN): Authorization: Bearer <token>',
      );
    }
    // digests of equal length: the comparison's time tells nothing of the token's length or prefix
    if (!timingSafeEqual(sha256(token), this.tokenDigest)) {
      throw new AuthenticationError(
        'that is not the metrics token (METRICS_TOKEN); a user token does not read the metrics',
      );
    }
  }
}
