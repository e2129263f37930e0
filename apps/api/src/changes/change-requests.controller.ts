import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import {
  type ChangeRequestCommand,
  type ChangeRequestFields,
  type ChangeView,
  notFound,
} from '@changeledger/domain';
import { changeRequestAggregate } from '../application/aggregates';
import { type CommandResult, ExecuteDecision } from '../application/execute-decision.command';
import { parsePosition } from '../read-models/parse-position';
import { pageRequestOf } from '../read-models/paging';
import { GetChange, ListChanges } from '../read-models/read-model.queries';
import { ReadPosition } from '../read-models/read-position';
import { ListChangesQueryDto, ReadQueryDto } from '../read-models/read-query.dto';
import { type CommandCall, CommandCallParam } from '../http/command-call.decorator';
import { IdempotentCommands } from '../idempotency/idempotent-commands';
import { FindKeyedChangeSubmission } from '../application/find-keyed-change-submission.query';
import { type CommandResponse, toCommandResponse } from '../http/command-response';
import { ChangeIdParam } from '../http/id-params';
import {
  AmendChangeDto,
  ApproveChangeDto,
  ChecklistItemDto,
  CompleteImplementationDto,
  DescriptionDto,
  EmptyDto,
  PostImplementationReviewDto,
  ReasonDto,
  RecordIssueDto,
  RecordReviewDto,
  RecordVerificationDto,
  RetrospectiveDecisionDto,
  ScheduleChangeDto,
} from './dto/commands.dto';
import { SubmitChangeDto } from './dto/submit-change.dto';

/** Only what the client sent: class instances may carry undefined keys. */
const definedOnly = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;

const toFields = (dto: SubmitChangeDto | AmendChangeDto): Partial<ChangeRequestFields> => {
  const { type: _t, standardTemplateId: _s, ...fields } = dto as SubmitChangeDto;
  return JSON.parse(JSON.stringify(definedOnly(fields))) as Partial<ChangeRequestFields>;
};

@ApiTags('changes')
@ApiBearerAuth()
@Controller('changes')
export class ChangeRequestsController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
    private readonly readPosition: ReadPosition,
    private readonly idempotent: IdempotentCommands,
  ) {}

  /** Every command route's way in: once per Idempotency-Key, then through the command bus. */
  private run(id: string | undefined, command: ChangeRequestCommand, call: CommandCall) {
    // A submission whose key its process left pending (it stopped before answering) is looked
    // for by that key: found, its answer is the answer.
    const idempotency =
      call.idempotency && id === undefined
        ? {
            ...call.idempotency,
            findAbandonedCreation: async (claimedAt: number) => {
              const found = await this.queryBus.execute<FindKeyedChangeSubmission, CommandResult | undefined>(
                new FindKeyedChangeSubmission(call.options, claimedAt),
              );
              return found && toCommandResponse(found);
            },
          }
        : call.idempotency;
    return this.idempotent.run(idempotency, async (): Promise<CommandResponse> => {
      const result = await this.commandBus.execute<ExecuteDecision<ChangeRequestCommand>, CommandResult>(
        new ExecuteDecision(changeRequestAggregate, id, command, call.options),
      );
      if (result.replayed) call.markReplayed();
      return toCommandResponse(result);
    });
  }

  @Post()
  @HttpCode(201)
  submit(@Body() dto: SubmitChangeDto, @CommandCallParam() call: CommandCall) {
    return this.run(
      undefined,
      {
        type: 'SubmitChange',
        changeId: '',
        changeType: dto.type,
        fields: toFields(dto) as ChangeRequestFields,
        standardTemplateId: dto.standardTemplateId,
      },
      call,
    );
  }

  @Get()
  async list(@Query() query: ListChangesQueryDto) {
    const { minPosition, limit: _limit, cursor: _cursor, ...filters } = query;
    return this.readPosition.read(parsePosition(minPosition), () =>
      this.queryBus.execute(new ListChanges(filters, pageRequestOf(query, 'changes'))),
    );
  }

  @Get(':id')
  async get(@Param() { id }: ChangeIdParam, @Query() query: ReadQueryDto): Promise<ChangeView> {
    const view = await this.readPosition.read(parsePosition(query.minPosition), () =>
      this.queryBus.execute<GetChange, ChangeView | undefined>(new GetChange(id)),
    );
    if (!view) throw notFound(`no change request ${id}`);
    return view;
  }

  @Patch(':id')
  @HttpCode(200)
  amend(@Param() { id }: ChangeIdParam, @Body() dto: AmendChangeDto, @CommandCallParam() call: CommandCall) {
    return this.run(id, { type: 'AmendChange', fields: toFields(dto) }, call);
  }

  @Post(':id/reviews')
  @HttpCode(200)
  review(
    @Param() { id }: ChangeIdParam,
    @Body() dto: RecordReviewDto,
    @CommandCallParam() call: CommandCall,
  ) {
    return this.run(id, { type: 'RecordReview', ...definedOnly(dto) }, call);
  }

  @Post(':id/approve')
  @HttpCode(200)
  approve(
    @Param() { id }: ChangeIdParam,
    @Body() dto: ApproveChangeDto,
    @CommandCallParam() call: CommandCall,
  ) {
    return this.run(id, { type: 'ApproveChange', ...definedOnly(dto) }, call);
  }

  @Post(':id/reject')
  @HttpCode(200)
  reject(@Param() { id }: ChangeIdParam, @Body() dto: ReasonDto, @CommandCallParam() call: CommandCall) {
    return this.run(id, { type: 'RejectChange', reason: dto.reason }, call);
  }

  @Post(':id/schedule')
  @HttpCode(200)
  schedule(
    @Param() { id }: ChangeIdParam,
    @Body() dto: ScheduleChangeDto,
    @CommandCallParam() call: CommandCall,
  ) {
    return this.run(id, { type: 'ScheduleChange', ...definedOnly(dto) }, call);
  }

  @Post(':id/checklist')
  @HttpCode(200)
  checklist(
    @Param() { id }: ChangeIdParam,
    @Body() dto: ChecklistItemDto,
    @CommandCallParam() call: CommandCall,
  ) {
    return this.run(id, { type: 'CompleteChecklistItem', ...definedOnly(dto) }, call);
  }

  @Post(':id/start')
  @HttpCode(200)
  start(@Param() { id }: ChangeIdParam, @Body() _dto: EmptyDto, @CommandCallParam() call: CommandCall) {
    return this.run(id, { type: 'StartImplementation' }, call);
  }

  @Post(':id/steps')
  @HttpCode(200)
  step(@Param() { id }: ChangeIdParam, @Body() dto: DescriptionDto, @CommandCallParam() call: CommandCall) {
    return this.run(id, { type: 'RecordImplementationStep', description: dto.description }, call);
  }

  @Post(':id/issues')
  @HttpCode(200)
  issue(@Param() { id }: ChangeIdParam, @Body() dto: RecordIssueDto, @CommandCallParam() call: CommandCall) {
    return this.run(id, { type: 'RecordImplementationIssue', ...definedOnly(dto) }, call);
  }

  @Post(':id/verification')
  @HttpCode(200)
  verification(
    @Param() { id }: ChangeIdParam,
    @Body() dto: RecordVerificationDto,
    @CommandCallParam() call: CommandCall,
  ) {
    return this.run(id, { type: 'RecordVerification', ...definedOnly(dto) }, call);
  }

  @Post(':id/complete')
  @HttpCode(200)
  complete(
    @Param() { id }: ChangeIdParam,
    @Body() dto: CompleteImplementationDto,
    @CommandCallParam() call: CommandCall,
  ) {
    return this.run(id, { type: 'CompleteImplementation', ...definedOnly(dto) }, call);
  }

  @Post(':id/post-implementation-review')
  @HttpCode(200)
  postImplementationReview(
    @Param() { id }: ChangeIdParam,
    @Body() dto: PostImplementationReviewDto,
    @CommandCallParam() call: CommandCall,
  ) {
    return this.run(id, { type: 'RecordPostImplementationReview', ...definedOnly(dto) }, call);
  }

  @Post(':id/retrospective-approval')
  @HttpCode(200)
  retrospective(
    @Param() { id }: ChangeIdParam,
    @Body() dto: RetrospectiveDecisionDto,
    @CommandCallParam() call: CommandCall,
  ) {
    return this.run(id, { type: 'RecordRetrospectiveDecision', ...definedOnly(dto) }, call);
  }

  @Post(':id/close')
  @HttpCode(200)
  close(@Param() { id }: ChangeIdParam, @Body() _dto: EmptyDto, @CommandCallParam() call: CommandCall) {
    return this.run(id, { type: 'CloseChange' }, call);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  cancel(@Param() { id }: ChangeIdParam, @Body() dto: ReasonDto, @CommandCallParam() call: CommandCall) {
    return this.run(id, { type: 'CancelChange', reason: dto.reason }, call);
  }
}
