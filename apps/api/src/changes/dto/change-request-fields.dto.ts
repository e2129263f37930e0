import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsIn,
  IsInt,
  IsISO8601,
  IsNotEmpty,
  IsObject,
  IsOptional,
  IsString,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import {
  EMERGENCY_CATEGORIES,
  type EmergencyCategory,
  PRIORITIES,
  type Priority,
  RISK_LEVELS,
  type RiskLevel,
} from '@changeledger/domain';

export const TEXT_MAX = 20_000;
export const LIST_MAX = 200;
const ISO = { strict: true, strictSeparator: true } as const;

export class RiskDto {
  @IsIn(RISK_LEVELS) level!: RiskLevel;
  @IsString() @IsNotEmpty() @MaxLength(TEXT_MAX) potentialImpact!: string;
  @IsString() @IsNotEmpty() @MaxLength(TEXT_MAX) mitigation!: string;
}

export class MaintenanceWindowDto {
  @IsISO8601(ISO) start!: string;
  @IsISO8601(ISO) end!: string;
}

export class TimelineDto {
  @IsISO8601(ISO) proposedStart!: string;
  @IsInt() @Min(1) @Max(525_600) estimatedDurationMinutes!: number;
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => MaintenanceWindowDto)
  maintenanceWindow?: MaintenanceWindowDto;
}

export class EmergencyDto {
  @IsIn(EMERGENCY_CATEGORIES) category!: EmergencyCategory;
  @IsString() @IsNotEmpty() @MaxLength(TEXT_MAX) justification!: string;
}

/**
 * Every field of the seed's template, all optional: PATCH uses it as is; POST /changes
 * (SubmitChangeDto) adds the requirements that depend on the change type.
 */
export class ChangeRequestFieldsDto {
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(200) title?: string;
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(TEXT_MAX) description?: string;
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(TEXT_MAX) reason?: string;
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(TEXT_MAX) expectedImpact?: string;
  @IsOptional() @IsIn(PRIORITIES) priority?: Priority;
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(LIST_MAX)
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  @MaxLength(500, { each: true })
  systemsAffected?: string[];
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(LIST_MAX)
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  @MaxLength(TEXT_MAX, { each: true })
  implementationPlan?: string[];
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(TEXT_MAX) rollbackPlan?: string;
  @IsOptional() @IsString() @IsNotEmpty() @MaxLength(TEXT_MAX) testingPlan?: string;
  @IsOptional() @IsObject() @ValidateNested() @Type(() => RiskDto) risk?: RiskDto;
  @IsOptional() @IsObject() @ValidateNested() @Type(() => TimelineDto) timeline?: TimelineDto;
  @IsOptional() @IsObject() @ValidateNested() @Type(() => EmergencyDto) emergency?: EmergencyDto;
}
