import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { EVENT_STORE, type EventStore } from '@changeledger/event-store';
import { Public } from '../auth/auth.guard';

export interface HealthReport {
  status: 'ok' | 'degraded';
  eventStore: 'up' | 'down';
  readModels: 'up' | 'down' | 'not-configured';
  projectionLag: number | null;
}

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(@Inject(EVENT_STORE) private readonly store: EventStore) {}

  @Public()
  @Get()
  async health(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthReport> {
    const eventStore = await this.store.ping().then(
      () => 'up' as const,
      () => 'down' as const,
    );
    const status = eventStore === 'up' ? 'ok' : 'degraded';
    if (status !== 'ok') void reply.status(503);
    return { status, eventStore, readModels: 'not-configured', projectionLag: null };
  }
}
