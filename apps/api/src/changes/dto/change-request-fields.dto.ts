import { applyDecorators } from '@nestjs/common';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsInt,
  IsObject,
  IsString,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { HasText } from '../../http/has-text.validator';
import {
  EMERGENCY_CATEGORIES,
  type EmergencyCategory,
  PRIORITIES,
  type Priority,
  RISK_LEVELS,
  type RiskLevel,
} from '@changeledger/domain';
import { OptionalNotNull } from '../../http/optional-not-null.validator';
import { IsUtcTimestamp } from '../../http/timestamp.validator';

export const TEXT_MAX = 20_000;
export const LIST_MAX = 200;

export class RiskDto {
  @IsIn(RISK_LEVELS) level!: RiskLevel;
  @IsString() @HasText() @MaxLength(TEXT_MAX) potentialImpact!: string;
  @IsString() @HasText() @MaxLength(TEXT_MAX) mitigation!: string;
}

export class MaintenanceWindowDto {
  @IsUtcTimestamp() start!: string;
  @IsUtcTimestamp() end!: string;
}

export class TimelineDto {
  @IsUtcTimestamp() proposedStart!: string;
  @IsInt() @Min(1) @Max(525_600) estimatedDurationMinutes!: number;
  @OptionalNotNull()
  @IsObject()
  @ValidateNested()
  @Type(() => MaintenanceWindowDto)
  maintenanceWindow?: MaintenanceWindowDto;
}

export class EmergencyDto {
  @IsIn(EMERGENCY_CATEGORIES) category!: EmergencyCategory;
  @IsString() @HasText() @MaxLength(TEXT_MAX) justification!: string;
}

/**
 * The seed template's fields: each one's value rules, without saying whether it must be sent
 * (the DTOs do: PATCH takes any of them, POST /changes requires some by change type). Kept
 * apart because class-validator merges a subclass's rules with its parent's: a field optional
 * in a parent stays optional whatever the subclass adds.
 */
/** Non-empty text of at most `max` characters. */
const text = (max: number) => applyDecorators(IsString(), HasText(), MaxLength(max));
/** A non-empty list of non-empty texts of at most `max` characters each. */
const textList = (max: number) =>
  applyDecorators(
    IsArray(),
    ArrayMinSize(1),
    ArrayMaxSize(LIST_MAX),
    IsString({ each: true }),
    HasText({ each: true }),
    MaxLength(max, { each: true }),
  );

export const TemplateField = {
  title: () => text(200),
  description: () => text(TEXT_MAX),
  reason: () => text(TEXT_MAX),
  expectedImpact: () => text(TEXT_MAX),
  priority: () => IsIn(PRIORITIES),
  systemsAffected: () => textList(500),
  implementationPlan: () => textList(TEXT_MAX),
  rollbackPlan: () => text(TEXT_MAX),
  testingPlan: () => text(TEXT_MAX),
  risk: () =>
    applyDecorators(
      IsObject(),
      ValidateNested(),
      Type(() => RiskDto),
    ),
  timeline: () =>
    applyDecorators(
      IsObject(),
      ValidateNested(),
      Type(() => TimelineDto),
    ),
  emergency: () =>
    applyDecorators(
      IsObject(),
      ValidateNested(),
      Type(() => EmergencyDto),
    ),
};

/** PATCH /changes/:id: any of the template's fields, each checked when sent; none erased. */
export class ChangeRequestFieldsDto {
  @OptionalNotNull() @TemplateField.title() title?: string;
  @OptionalNotNull() @TemplateField.description() description?: string;
  @OptionalNotNull() @TemplateField.reason() reason?: string;
  @OptionalNotNull() @TemplateField.expectedImpact() expectedImpact?: string;
  @OptionalNotNull() @TemplateField.priority() priority?: Priority;
  @OptionalNotNull() @TemplateField.systemsAffected() systemsAffected?: string[];
  @OptionalNotNull() @TemplateField.implementationPlan() implementationPlan?: string[];
  @OptionalNotNull() @TemplateField.rollbackPlan() rollbackPlan?: string;
  @OptionalNotNull() @TemplateField.testingPlan() testingPlan?: string;
  @OptionalNotNull() @TemplateField.risk() risk?: RiskDto;
  @OptionalNotNull() @TemplateField.timeline() timeline?: TimelineDto;
  @OptionalNotNull() @TemplateField.emergency() emergency?: EmergencyDto;
}
