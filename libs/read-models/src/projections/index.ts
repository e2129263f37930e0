import type { Projection } from './projection';
import { changeLogProjection } from './change-log.projection';
import { complianceFactsProjection } from './compliance-facts.projection';
import { followUpsProjection } from './follow-ups.projection';
import { changeRequestsProjection } from './change-requests.projection';
import { changeScheduleProjection } from './change-schedule.projection';
import { pendingApprovalsProjection } from './pending-approvals.projection';
import { retrospectiveQueueProjection } from './retrospective-queue.projection';
import { standardTemplatesProjection } from './standard-templates.projection';

export * from './projection';
export * from './business-days';
export * from './change-status';
export * from './change-log.projection';
export * from './change-requests.projection';
export * from './change-schedule.projection';
export * from './change-schedule.ics';
export * from './compliance-facts.projection';
export * from './follow-ups.projection';
export * from './pending-approvals.projection';
export * from './retrospective-queue.projection';
export * from './standard-templates.projection';

/** Every read model the projector keeps. */
export const allProjections = (): Projection[] =>
  [
    changeRequestsProjection,
    changeLogProjection,
    pendingApprovalsProjection,
    retrospectiveQueueProjection,
    standardTemplatesProjection,
    complianceFactsProjection,
    changeScheduleProjection,
    followUpsProjection,
  ] as unknown as Projection[];
