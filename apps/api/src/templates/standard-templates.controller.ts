import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { StandardTemplateCommand } from '@changeledger/domain';
import { standardTemplateAggregate } from '../application/aggregates';
import { type CommandResult, ExecuteDecision } from '../application/execute-decision.command';
import { parsePosition } from '../read-models/parse-position';
import { GetStandardTemplate, ListStandardTemplates } from '../read-models/read-model.queries';
import { ReadPosition } from '../read-models/read-position';
import { PagedQueryDto, ReadQueryDto } from '../read-models/read-query.dto';
import { pageRequestOf } from '../read-models/paging';
import { CreateStandardTemplateDto, RetireStandardTemplateDto } from '../changes/dto/commands.dto';
import { type CommandCall, CommandCallParam } from '../http/command-call.decorator';
import { IdempotentCommands } from '../idempotency/idempotent-commands';
import { toCommandResponse } from '../http/command-response';
import { TemplateIdParam } from '../http/id-params';
import { notFound } from '@changeledger/domain';

@ApiTags('standard-templates')
@ApiBearerAuth()
@Controller('standard-templates')
export class StandardTemplatesController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
    private readonly readPosition: ReadPosition,
    private readonly idempotent: IdempotentCommands,
  ) {}

  /** Every command route's way in: once per Idempotency-Key, then through the command bus. */
  private run(id: string | undefined, command: StandardTemplateCommand, call: CommandCall) {
    return this.idempotent.run(call.idempotency, async () => {
      const result = await this.commandBus.execute<ExecuteDecision<StandardTemplateCommand>, CommandResult>(
        new ExecuteDecision(standardTemplateAggregate, id, command, call.options),
      );
      if (result.replayed) call.markReplayed();
      return toCommandResponse(result);
    });
  }

  @Post()
  @HttpCode(201)
  create(@Body() dto: CreateStandardTemplateDto, @CommandCallParam() call: CommandCall) {
    return this.run(undefined, { type: 'CreateStandardTemplate', templateId: '', ...dto }, call);
  }

  @Post(':id/retire')
  @HttpCode(200)
  retire(
    @Param() { id }: TemplateIdParam,
    @Body() dto: RetireStandardTemplateDto,
    @CommandCallParam() call: CommandCall,
  ) {
    return this.run(id, { type: 'RetireStandardTemplate', reason: dto.reason }, call);
  }

  @Get()
  async list(@Query() query: PagedQueryDto) {
    return this.readPosition.read(parsePosition(query.minPosition), () =>
      this.queryBus.execute(new ListStandardTemplates(pageRequestOf(query, 'standard-templates'))),
    );
  }

  /** One template, as the list shows it (not in the contract: where a creation's Location points). */
  @Get(':id')
  async get(@Param() { id }: TemplateIdParam, @Query() query: ReadQueryDto) {
    const template = await this.readPosition.read(parsePosition(query.minPosition), () =>
      this.queryBus.execute(new GetStandardTemplate(id)),
    );
    if (!template) throw notFound(`no standard template ${id}`);
    return template;
  }
}
