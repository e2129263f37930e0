import { applyDecorators } from '@nestjs/common';
import { IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { JSONSchema } from 'class-validator-jsonschema';
import { CHANGE_STATUSES, CHANGE_TYPES, RISK_LEVELS } from '@changeledger/domain';
import { FOLLOW_UP_STEPS, type FollowUpStep } from '@changeledger/read-models';
import { HasText } from '../http/has-text.validator';
import { IsLogPosition } from '../http/log-position.validator';
import { NoControlCharacters } from '../http/no-control-characters.validator';
import { IsTimestamp } from '../http/timestamp.validator';
import { DEFAULT_LIMIT, MAX_LIMIT } from './paging';

/** A range's start, as the filters read it. */
export const FROM_BOUND = 'A date (from its midnight UTC) or a time with its zone; inclusive.';
/** A range's end, as the filters read it: a bare date takes in that whole day. */
export const TO_BOUND = 'A date (inclusive: the whole day, UTC) or a time with its zone (exclusive).';
const SYSTEM_FILTER =
  'Only changes naming this system (case, surrounding spaces and zero-width characters aside); text with at least one visible character.';

/**
 * An optional free-text filter: visible text without control characters, at most `maxLength`
 * characters, and what it matches said in the OpenAPI document (a JSONSchema of its own replaces
 * the one HasText gives: its minLength is kept here).
 */
const TextFilter = (maxLength: number, description: string) =>
  applyDecorators(
    IsOptional(),
    IsString(),
    HasText(),
    NoControlCharacters(),
    MaxLength(maxLength),
    JSONSchema({ minLength: 1, description }) as PropertyDecorator,
  );

/** What every read endpoint accepts. */
export class ReadQueryDto {
  @IsOptional()
  @IsLogPosition('minPosition')
  minPosition?: string;
}

export class PagedQueryDto extends ReadQueryDto {
  @IsOptional()
  // 1 to 500 (MAX_LIMIT), so that the document's pattern says the range too
  @Matches(/^([1-9]\d?|[1-4]\d\d|500)$/, { message: 'limit must be an integer from 1 to 500' })
  @JSONSchema({ description: `Rows per page, from 1 to ${MAX_LIMIT}; ${DEFAULT_LIMIT} when left out.` })
  limit?: string;
  @IsOptional()
  @IsString()
  @MaxLength(512)
  @JSONSchema({
    description:
      "The page after the one whose answer's `nextCursor` (also the `Next-Cursor` header) this is; good for the same list and filters only.",
  })
  cursor?: string;
}

export class ListChangesQueryDto extends PagedQueryDto {
  @IsOptional() @IsIn(CHANGE_STATUSES) status?: string;
  @IsOptional() @IsIn(CHANGE_TYPES) type?: string;
  @IsOptional() @IsIn(RISK_LEVELS) riskLevel?: string;
  @TextFilter(500, SYSTEM_FILTER) system?: string;
  @TextFilter(
    200,
    'Only changes whose id, title or description holds this text (case, surrounding spaces and zero-width characters aside; no patterns).',
  )
  q?: string;
  @TextFilter(
    200,
    "Only changes requested by this user id (the token's `sub`, as `requestedBy.id` shows it), matched exactly: not a name.",
  )
  requestedBy?: string;
  /** Submitted at or after. */
  @IsOptional() @IsTimestamp({ dateOnly: true, description: FROM_BOUND }) from?: string;
  /** Submitted before. */
  @IsOptional() @IsTimestamp({ dateOnly: true, description: TO_BOUND }) to?: string;
}

export class ChangeLogQueryDto extends PagedQueryDto {
  @IsOptional() @IsIn(['json', 'csv', 'markdown']) format?: 'json' | 'csv' | 'markdown';
}

export class PendingApprovalsQueryDto extends PagedQueryDto {
  @IsOptional() @IsIn(['infrastructure-lead', 'management']) requiredApproval?: string;
}

export class FollowUpsQueryDto extends PagedQueryDto {
  /** Only changes waiting for this step. */
  @IsOptional() @IsIn(FOLLOW_UP_STEPS) waitingFor?: FollowUpStep;
}

export class ScheduleQueryDto extends PagedQueryDto {
  @IsOptional()
  @IsTimestamp({ dateOnly: true, description: `${FROM_BOUND} Default: the start of today (UTC).` })
  from?: string;
  @IsOptional()
  @IsTimestamp({ dateOnly: true, description: `${TO_BOUND} Default: 14 days after \`from\`.` })
  to?: string;
  @TextFilter(500, SYSTEM_FILTER) system?: string;
  /** `ics`: an iCalendar file of the whole range (for a team's calendar), unless paged. */
  @IsOptional() @IsIn(['json', 'ics']) format?: 'json' | 'ics';
  /**
   * With `format=ics` only: a feed token (`npm run token -- --feed schedule`) for calendar
   * clients, which subscribe to a URL and send no headers. Checked by the AuthGuard.
   */
  @IsOptional() @IsString() @MaxLength(8192) access_token?: string;
}
