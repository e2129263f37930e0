import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { StandardTemplateCommand } from '@changeledger/domain';
import { standardTemplateAggregate } from '../application/aggregates';
import {
  type CommandOptions,
  type CommandResult,
  ExecuteDecision,
} from '../application/execute-decision.command';
import { parsePosition } from '../read-models/parse-position';
import { ListStandardTemplates } from '../read-models/read-model.queries';
import { ReadPosition } from '../read-models/read-position';
import { ReadQueryDto } from '../read-models/read-query.dto';
import { CreateStandardTemplateDto, RetireStandardTemplateDto } from '../changes/dto/commands.dto';
import { CommandOptionsParam } from '../http/command-options.decorator';
import { Idempotent } from '../idempotency/idempotency.interceptor';
import { toCommandResponse } from '../http/command-response';
import { TemplateIdParam } from '../http/id-params';

@ApiTags('standard-templates')
@ApiBearerAuth()
@Controller('standard-templates')
export class StandardTemplatesController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
    private readonly readPosition: ReadPosition,
  ) {}

  private async run(id: string | undefined, command: StandardTemplateCommand, options: CommandOptions) {
    const result = await this.commandBus.execute<ExecuteDecision<StandardTemplateCommand>, CommandResult>(
      new ExecuteDecision(standardTemplateAggregate, id, command, options),
    );
    return toCommandResponse(result);
  }

  @Idempotent()
  @Post()
  @HttpCode(201)
  create(@Body() dto: CreateStandardTemplateDto, @CommandOptionsParam() options: CommandOptions) {
    return this.run(undefined, { type: 'CreateStandardTemplate', templateId: '', ...dto }, options);
  }

  @Idempotent()
  @Post(':id/retire')
  @HttpCode(200)
  retire(
    @Param() { id }: TemplateIdParam,
    @Body() dto: RetireStandardTemplateDto,
    @CommandOptionsParam() options: CommandOptions,
  ) {
    return this.run(id, { type: 'RetireStandardTemplate', reason: dto.reason }, options);
  }

  @Get()
  async list(@Query() query: ReadQueryDto) {
    await this.readPosition.await(parsePosition(query.minPosition));
    return { items: await this.queryBus.execute(new ListStandardTemplates()) };
  }
}
