import { createHash, timingSafeEqual } from 'node:crypto';
import { Controller, Get, Header, Headers, Inject } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiForbiddenResponse,
  ApiOkResponse,
  ApiProduces,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { APP_CONFIG, type AppConfig } from '@changeledger/platform';
import { admit, authenticate, bearerToken, Public } from '../auth/auth.guard';
import { AuthenticationError, JWT_VERIFIER, type JwtVerifier } from '../auth/jwt-verifier';
import { type HealthReport, HealthService, UNKNOWN_FIELDS } from '../health/health.service';
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
    // known only while the read-model store answers, and when read in time: left out, not 0, else
    ...(report.readModels !== 'up' || report[UNKNOWN_FIELDS]?.has('projectorStalledSince')
      ? []
      : gauge(
          'changeledger_projector_stalled_seconds',
          'For how long the projector has been failing to write the same events (0 when it is not).',
          report.projectorStalledSince === null ? 0 : (now - Date.parse(report.projectorStalledSince)) / 1000,
        )),
    ...(report.readModels !== 'up' || report[UNKNOWN_FIELDS]?.has('staleReadModels')
      ? []
      : gauge(
          'changeledger_stale_read_models',
          'Read models written by another version of their projection (until projections:rebuild).',
          report.staleReadModels.length,
        )),
    ...(report.webhook === null
      ? []
      : [
          ...gauge(
            'changeledger_webhook_delivered_position',
            'Where webhook delivery got: every wanted event up to this log position was accepted by the receiver or given up by npm run webhook:skip.',
            report.webhook.deliveredThrough === null ? null : Number(report.webhook.deliveredThrough),
          ),
          ...gauge(
            'changeledger_webhook_failing_seconds',
            'For how long the webhook receiver has been refusing the same event, or the event log could not be read for it (0 when neither).',
            failing === null ? 0 : (now - Date.parse(failing.since)) / 1000,
          ),
          ...gauge(
            'changeledger_webhook_failing_attempts',
            'How often the refused event has been sent (0 when none is refused).',
            failing?.attempts ?? 0,
          ),
          ...gauge(
            'changeledger_webhook_standing_by',
            'Another process sharing DATA_DIR delivers the webhook (1): this one takes over when it stops.',
            report.webhook.standingBy ? 1 : 0,
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
  /** The digest of METRICS_TOKEN, compared in constant time; undefined: a user's token. */
  private readonly tokenDigest?: Buffer;

  constructor(
    private readonly health: HealthService,
    private readonly commands: CommandMetrics,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(JWT_VERIFIER) private readonly verifier: JwtVerifier,
  ) {
    if (config.metricsToken !== undefined) this.tokenDigest = sha256(config.metricsToken);
  }

  // (the token is checked here, not by the guard: with METRICS_TOKEN set it is not a JWT)
  @Public()
  @Get()
  @Header('Content-Type', PROMETHEUS_CONTENT_TYPE)
  @Header('Cache-Control', 'no-store')
  @ApiProduces('text/plain')
  @ApiBearerAuth()
  @ApiOkResponse({ description: 'Prometheus text exposition format 0.0.4' })
  @ApiUnauthorizedResponse({
    description:
      "no bearer token; with METRICS_TOKEN set, not that token; without it, not a valid user's token",
  })
  @ApiForbiddenResponse({ description: "a feed token, or a token with none of the service's roles" })
  async metrics(@Headers('authorization') authorization: string | undefined): Promise<string> {
    await this.checkToken(authorization);
    const report = await this.health.report();
    return renderPrometheus([
      ...healthFamilies(report, Date.now()),
      ...this.commands.families(),
      ...processFamilies(),
    ]);
  }

  private async checkToken(authorization: string | undefined) {
    // Without a metrics token, as every endpoint but /health: a user's token, any role.
    if (this.tokenDigest === undefined) {
      admit(await authenticate(authorization, this.verifier));
      return;
    }
    const token = bearerToken(authorization);
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
