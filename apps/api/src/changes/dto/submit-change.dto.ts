import { applyDecorators } from '@nestjs/common';
import { IsDefined, IsIn, Matches, ValidateIf, type ValidationArguments } from 'class-validator';
import { JSONSchema } from 'class-validator-jsonschema';
import { CHANGE_TYPES, type ChangeType, type Priority } from '@changeledger/domain';
import {
  type EmergencyDto,
  type RiskDto,
  TemplateField,
  type TimelineDto,
} from './change-request-fields.dto';
import { OptionalNotNull } from '../../http/optional-not-null.validator';

const REQUIRED = {
  message: ({ property, value }: ValidationArguments) =>
    value === null ? `${property} must not be null` : `${property} is required`,
};
/** Required of every change type. */
const Required = () => IsDefined(REQUIRED);
/**
 * Required unless the change is an emergency, whose plan, risk and timeline come after the fact
 * (before its retrospective approval); sent with an emergency, checked all the same.
 */
const RequiredUnlessEmergency = () =>
  applyDecorators(
    ValidateIf((o: SubmitChangeDto, value: unknown) => o.type !== 'emergency' || value !== undefined),
    IsDefined(REQUIRED),
  );

/**
 * POST /changes: the template, with what each change type must fill in at submission. Not a
 * subclass of the PATCH DTO: its optional fields would stay optional here (see TemplateField).
 */
@JSONSchema({
  description:
    '`required` lists what every type needs. A standard or normal change also needs expectedImpact, ' +
    'implementationPlan, rollbackPlan, testingPlan, risk and timeline, and a standard change ' +
    "standardTemplateId (its implementationPlan is that template's procedure, its risk low, its " +
    "systems within the template's systemsScope); an emergency needs emergency, and may send those six later (PATCH).",
})
export class SubmitChangeDto {
  @IsIn(CHANGE_TYPES) type!: ChangeType;
  @Required() @TemplateField.title() title!: string;
  @Required() @TemplateField.description() description!: string;
  @Required() @TemplateField.reason() reason!: string;
  @Required() @TemplateField.priority() priority!: Priority;
  @Required() @TemplateField.systemsAffected() systemsAffected!: string[];
  @RequiredUnlessEmergency() @TemplateField.expectedImpact() expectedImpact?: string;
  @RequiredUnlessEmergency() @TemplateField.implementationPlan() implementationPlan?: string[];
  @RequiredUnlessEmergency() @TemplateField.rollbackPlan() rollbackPlan?: string;
  @RequiredUnlessEmergency() @TemplateField.testingPlan() testingPlan?: string;
  @RequiredUnlessEmergency() @TemplateField.risk() risk?: RiskDto;
  @RequiredUnlessEmergency() @TemplateField.timeline() timeline?: TimelineDto;
  @ValidateIf((o: SubmitChangeDto, value: unknown) => o.type === 'emergency' || value !== undefined)
  @IsDefined(REQUIRED)
  @TemplateField.emergency()
  emergency?: EmergencyDto;
  @OptionalNotNull()
  @Matches(/^STD-\d{3,}$/, { message: 'standardTemplateId must look like STD-001' })
  standardTemplateId?: string;
}
