import { IsDefined, IsIn, IsOptional, Matches, ValidateIf } from 'class-validator';
import { CHANGE_TYPES, type ChangeType } from '@changeledger/domain';
import { ChangeRequestFieldsDto } from './change-request-fields.dto';

const notEmergency = (o: SubmitChangeDto) => o.type !== 'emergency';
const REQUIRED = { message: '$property is required' };

/** POST /changes: the template, with what each change type must fill in at submission. */
export class SubmitChangeDto extends ChangeRequestFieldsDto {
  @IsIn(CHANGE_TYPES) type!: ChangeType;
  @IsDefined(REQUIRED) declare title: string;
  @IsDefined(REQUIRED) declare description: string;
  @IsDefined(REQUIRED) declare reason: string;
  @IsDefined(REQUIRED) declare priority: NonNullable<ChangeRequestFieldsDto['priority']>;
  @IsDefined(REQUIRED) declare systemsAffected: string[];
  @ValidateIf(notEmergency) @IsDefined(REQUIRED) declare expectedImpact?: string;
  @ValidateIf(notEmergency) @IsDefined(REQUIRED) declare implementationPlan?: string[];
  @ValidateIf(notEmergency) @IsDefined(REQUIRED) declare rollbackPlan?: string;
  @ValidateIf(notEmergency) @IsDefined(REQUIRED) declare testingPlan?: string;
  @ValidateIf(notEmergency) @IsDefined(REQUIRED) declare risk?: ChangeRequestFieldsDto['risk'];
  @ValidateIf(notEmergency) @IsDefined(REQUIRED) declare timeline?: ChangeRequestFieldsDto['timeline'];
  @ValidateIf((o: SubmitChangeDto) => o.type === 'emergency')
  @IsDefined(REQUIRED)
  declare emergency?: ChangeRequestFieldsDto['emergency'];
  @IsOptional()
  @Matches(/^STD-\d{3,}$/, { message: 'standardTemplateId must look like STD-001' })
  standardTemplateId?: string;
}
