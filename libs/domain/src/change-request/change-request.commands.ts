import type {
  ChangeRequestFields,
  ChangeType,
  ChecklistItem,
  IssueSeverity,
  Outcome,
  RetrospectiveDecision,
  ReviewKind,
  ReviewVerdict,
} from './change-request.types';

export type SubmitChange = {
  type: 'SubmitChange';
  changeId: string;
  changeType: ChangeType;
  fields: ChangeRequestFields;
  standardTemplateId?: string;
};
export type AmendChange = { type: 'AmendChange'; fields: Partial<ChangeRequestFields> };
export type RecordReview = {
  type: 'RecordReview';
  kind: ReviewKind;
  verdict: ReviewVerdict;
  notes: string;
  criteria: Record<string, string>;
};
export type ApproveChange = { type: 'ApproveChange'; comment?: string };
export type RejectChange = { type: 'RejectChange'; reason: string };
export type ScheduleChange = {
  type: 'ScheduleChange';
  plannedStart: string;
  plannedEnd: string;
  maintenanceWindow: boolean;
};
export type CompleteChecklistItem = { type: 'CompleteChecklistItem'; item: ChecklistItem; note?: string };
export type StartImplementation = { type: 'StartImplementation' };
export type RecordImplementationStep = { type: 'RecordImplementationStep'; description: string };
export type RecordImplementationIssue = {
  type: 'RecordImplementationIssue';
  description: string;
  severity: IssueSeverity;
};
export type RecordVerification = {
  type: 'RecordVerification';
  functionalityTested: boolean;
  systemHealthVerified: boolean;
  logsChecked: boolean;
  notes?: string;
};
export type CompleteImplementation = { type: 'CompleteImplementation'; outcome: Outcome; notes?: string };
export type RecordPostImplementationReview = {
  type: 'RecordPostImplementationReview';
  documentationUpdated: boolean;
  issues?: string;
  lessonsLearned: string;
  improvements: string[];
};
export type RecordRetrospectiveDecision = {
  type: 'RecordRetrospectiveDecision';
  decision: RetrospectiveDecision;
  comment: string;
};
export type CloseChange = { type: 'CloseChange' };
export type CancelChange = { type: 'CancelChange'; reason: string };

export type ChangeRequestCommand =
  | SubmitChange
  | AmendChange
  | RecordReview
  | ApproveChange
  | RejectChange
  | ScheduleChange
  | CompleteChecklistItem
  | StartImplementation
  | RecordImplementationStep
  | RecordImplementationIssue
  | RecordVerification
  | CompleteImplementation
  | RecordPostImplementationReview
  | RecordRetrospectiveDecision
  | CloseChange
  | CancelChange;

export type ChangeRequestCommandType = ChangeRequestCommand['type'];
