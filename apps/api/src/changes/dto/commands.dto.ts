import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsObject,
  IsString,
  MaxLength,
  ValidateBy,
} from 'class-validator';
import { HasText } from '../../http/has-text.validator';
import {
  CHECKLIST_ITEMS,
  type ChecklistItem,
  ISSUE_SEVERITIES,
  type IssueSeverity,
  OUTCOMES,
  type Outcome,
  RETROSPECTIVE_DECISIONS,
  type RetrospectiveDecision,
  REVIEW_KINDS,
  REVIEW_VERDICTS,
  type ReviewKind,
  type ReviewVerdict,
} from '@changeledger/domain';
import { OptionalNotNull } from '../../http/optional-not-null.validator';
import { IsUtcTimestamp } from '../../http/timestamp.validator';
import { LIST_MAX, TEXT_MAX } from './change-request-fields.dto';

/**
 * PATCH /changes/:id: the template's fields, each optional. The same class, not a subclass: the
 * OpenAPI schemas come from class-validator's metadata, which a subclass without rules of its
 * own has none of (PATCH's body was documented as an empty object).
 */
export { ChangeRequestFieldsDto as AmendChangeDto } from './change-request-fields.dto';

/**
 * Every value given is text of at most `max` characters, as every other text field is (which
 * keys are due, and blanks, the domain checks: it names the missing criteria).
 */
const CriteriaTexts = (max: number) =>
  ValidateBy({
    name: 'criteriaTexts',
    constraints: [max], // read by the OpenAPI document
    validator: {
      validate: (value: unknown) =>
        typeof value === 'object' &&
        value !== null &&
        Object.values(value).every((v) => typeof v !== 'string' || v.length <= max),
      defaultMessage: () => `each criterion must be at most ${max} characters`,
    },
  });

export class RecordReviewDto {
  @IsIn(REVIEW_KINDS) kind!: ReviewKind;
  @IsIn(REVIEW_VERDICTS) verdict!: ReviewVerdict;
  @IsString() @HasText() @MaxLength(TEXT_MAX) notes!: string;
  /** Keys depend on `kind`; the domain checks them (see the contract). */
  @IsObject() @CriteriaTexts(TEXT_MAX) criteria!: Record<string, string>;
}

export class ApproveChangeDto {
  @OptionalNotNull() @IsString() @MaxLength(TEXT_MAX) comment?: string;
}

export class ReasonDto {
  @IsString() @HasText() @MaxLength(TEXT_MAX) reason!: string;
}

export class ScheduleChangeDto {
  @IsUtcTimestamp() plannedStart!: string;
  @IsUtcTimestamp() plannedEnd!: string;
  @IsBoolean() maintenanceWindow!: boolean;
}

export class ChecklistItemDto {
  @IsIn(CHECKLIST_ITEMS) item!: ChecklistItem;
  @OptionalNotNull() @IsString() @MaxLength(TEXT_MAX) note?: string;
}

export class EmptyDto {}

export class DescriptionDto {
  @IsString() @HasText() @MaxLength(TEXT_MAX) description!: string;
}

export class RecordIssueDto extends DescriptionDto {
  @IsIn(ISSUE_SEVERITIES) severity!: IssueSeverity;
}

export class RecordVerificationDto {
  @IsBoolean() functionalityTested!: boolean;
  @IsBoolean() systemHealthVerified!: boolean;
  @IsBoolean() logsChecked!: boolean;
  @OptionalNotNull() @IsString() @MaxLength(TEXT_MAX) notes?: string;
}

export class CompleteImplementationDto {
  @IsIn(OUTCOMES) outcome!: Outcome;
  @OptionalNotNull() @IsString() @MaxLength(TEXT_MAX) notes?: string;
}

export class PostImplementationReviewDto {
  @IsBoolean() documentationUpdated!: boolean;
  @OptionalNotNull() @IsString() @MaxLength(TEXT_MAX) issues?: string;
  @IsString() @HasText() @MaxLength(TEXT_MAX) lessonsLearned!: string;
  @IsArray()
  @ArrayMaxSize(LIST_MAX)
  @IsString({ each: true })
  @HasText({ each: true })
  @MaxLength(TEXT_MAX, { each: true })
  improvements!: string[];
}

export class RetrospectiveDecisionDto {
  @IsIn(RETROSPECTIVE_DECISIONS) decision!: RetrospectiveDecision;
  @IsString() @HasText() @MaxLength(TEXT_MAX) comment!: string;
}

export class CreateStandardTemplateDto {
  @IsString() @HasText() @MaxLength(200) name!: string;
  @IsString() @HasText() @MaxLength(TEXT_MAX) description!: string;
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(LIST_MAX)
  @IsString({ each: true })
  @HasText({ each: true })
  @MaxLength(TEXT_MAX, { each: true })
  procedure!: string[];
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(LIST_MAX)
  @IsString({ each: true })
  @HasText({ each: true })
  @MaxLength(500, { each: true })
  systemsScope!: string[];
}

export class RetireStandardTemplateDto {
  @OptionalNotNull() @IsString() @MaxLength(TEXT_MAX) reason?: string;
}
