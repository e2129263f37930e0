import type { ActorRef } from '../shared/actor';

export const CHANGE_TYPES = ['standard', 'normal', 'emergency'] as const;
export type ChangeType = (typeof CHANGE_TYPES)[number];

export const PRIORITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const RISK_LEVELS = ['low', 'medium', 'high'] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

export const CHANGE_STATUSES = [
  'in-review',
  'changes-requested',
  'awaiting-approval',
  'approved',
  'rejected',
  'scheduled',
  'in-progress',
  'implemented',
  'closed',
  'cancelled',
] as const;
export type ChangeStatus = (typeof CHANGE_STATUSES)[number];

export const REVIEW_KINDS = ['technical', 'business', 'security'] as const;
export type ReviewKind = (typeof REVIEW_KINDS)[number];

export const REVIEW_VERDICTS = ['approve', 'request-changes', 'reject'] as const;
export type ReviewVerdict = (typeof REVIEW_VERDICTS)[number];

/** The seed's review criteria, per kind: every key must be answered. */
export const REVIEW_CRITERIA: Record<ReviewKind, readonly string[]> = {
  technical: ['feasibility', 'impactAssessment', 'riskEvaluation'],
  business: ['businessImpact', 'resourceRequirements', 'timelineAlignment'],
  security: ['securityImplications', 'complianceRequirements', 'riskAssessment'],
};

export const CHECKLIST_ITEMS = [
  'backups-verified',
  'rollback-plan-prepared',
  'stakeholders-notified',
  'maintenance-window-scheduled',
] as const;
export type ChecklistItem = (typeof CHECKLIST_ITEMS)[number];

export const ISSUE_SEVERITIES = ['low', 'medium', 'high'] as const;
export type IssueSeverity = (typeof ISSUE_SEVERITIES)[number];

export const OUTCOMES = ['successful', 'failed', 'rolled-back'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const EMERGENCY_CATEGORIES = ['security', 'outage', 'data-loss-prevention', 'regulatory'] as const;
export type EmergencyCategory = (typeof EMERGENCY_CATEGORIES)[number];

export const RETROSPECTIVE_DECISIONS = ['approve', 'reject'] as const;
export type RetrospectiveDecision = (typeof RETROSPECTIVE_DECISIONS)[number];

export type ApprovalLevel = 'infrastructure-lead' | 'management';

export interface RiskAssessment {
  readonly level: RiskLevel;
  readonly potentialImpact: string;
  readonly mitigation: string;
}

export interface Timeline {
  readonly proposedStart: string;
  readonly estimatedDurationMinutes: number;
  readonly maintenanceWindow?: { readonly start: string; readonly end: string };
}

export interface EmergencyDetails {
  readonly category: EmergencyCategory;
  readonly justification: string;
}

/** The seed's change request template. Emergency changes may fill the optional part later. */
export interface ChangeRequestFields {
  readonly title: string;
  readonly description: string;
  readonly reason: string;
  readonly priority: Priority;
  readonly systemsAffected: readonly string[];
  readonly expectedImpact?: string;
  readonly implementationPlan?: readonly string[];
  readonly rollbackPlan?: string;
  readonly testingPlan?: string;
  readonly risk?: RiskAssessment;
  readonly timeline?: Timeline;
  readonly emergency?: EmergencyDetails;
}

export type AmendableField = keyof ChangeRequestFields;

/** What every change request carries from its submission on, whatever its type. */
export const BASE_FIELDS = [
  'title',
  'description',
  'reason',
  'priority',
  'systemsAffected',
] as const satisfies readonly AmendableField[];

/** Fields an emergency change may declare without, but must have before retrospective approval. */
export const LATER_FIELDS = [
  'expectedImpact',
  'implementationPlan',
  'rollbackPlan',
  'testingPlan',
  'risk',
  'timeline',
] as const satisfies readonly AmendableField[];

export interface Stamp {
  readonly by: ActorRef;
  readonly at: string;
}
