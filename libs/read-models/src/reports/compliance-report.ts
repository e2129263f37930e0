import type { ActorRef, ChangeType, Outcome } from '@changeledger/domain';
import type { ComplianceFactsDocument, DutyRule } from '../projections/compliance-facts.projection';
import { monthsOf, type ReportPeriod } from './report-period';

/** A change waiting in review longer than this is a finding (the issue's 14 days). */
export const STALE_REVIEW_DAYS = 14;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface LeadTime {
  /** Changes measured. */
  readonly count: number;
  readonly medianHours: number | null;
  readonly p90Hours: number | null;
}

interface ChangeRef {
  readonly changeId: string;
  readonly title: string;
  readonly type: ChangeType;
}

export interface ComplianceReport {
  readonly period: ReportPeriod;
  /** Facts are read as they stood at this instant: the period's end, or now if that is earlier. */
  readonly asOf: string;
  readonly generatedAt: string;
  /** The global log position the read models had reached: the report reflects every event up to it. */
  readonly readModelPosition: string;
  readonly volumes: {
    readonly submitted: Readonly<Record<ChangeType, number>> & { readonly total: number };
    readonly byMonth: readonly ({ readonly month: string } & Readonly<Record<ChangeType, number>>)[];
    readonly outcomes: Readonly<Record<Outcome, number>>;
    readonly cancelled: number;
    readonly rejected: { readonly total: number; readonly inReview: number; readonly atApproval: number };
    readonly retrospectivelyRejected: number;
  };
  /** Successful implementations / all implementations that ended in the period (null if none). */
  readonly successRate: number | null;
  /** Emergency changes / all changes submitted in the period (null if none). */
  readonly emergencyShare: number | null;
  readonly leadTimes: {
    readonly submittedToApproved: LeadTime;
    readonly approvedToImplementationStart: LeadTime;
    readonly emergencyDeclaredToRetrospectiveApproval: LeadTime;
  };
  readonly findings: {
    readonly overdueRetrospectives: readonly (ChangeRef & {
      readonly dueAt: string;
      readonly implementedAt: string;
    })[];
    readonly lateRetrospectives: readonly (ChangeRef & {
      readonly dueAt: string;
      readonly decidedAt: string;
    })[];
    readonly retrospectivelyRejected: readonly (ChangeRef & {
      readonly decidedAt: string;
      readonly by: ActorRef;
    })[];
    readonly implementedOutsideWindow: readonly (ChangeRef & {
      readonly plannedStart: string;
      readonly plannedEnd: string;
      readonly startedAt: string;
      readonly completedAt: string | null;
      readonly reasons: readonly ('started-early' | 'started-late' | 'overran')[];
    })[];
    readonly failedWithoutReview: readonly (ChangeRef & {
      readonly outcome: Outcome;
      readonly completedAt: string;
    })[];
    readonly segregationOfDutiesExceptions: readonly (ChangeRef & {
      readonly rule: DutyRule;
      readonly actor: ActorRef;
      readonly eventType: string;
      readonly revision: string;
      readonly at: string;
    })[];
    readonly staleInReview: readonly (ChangeRef & {
      readonly since: string;
      readonly until: string | null;
      readonly days: number;
    })[];
  };
  /** From the post-implementation reviews recorded in the period, for the quarterly process review. */
  readonly lessonsLearned: readonly (ChangeRef & {
    readonly at: string;
    readonly by: ActorRef;
    readonly lessonsLearned: string;
    readonly improvements: readonly string[];
    readonly issues: string | null;
  })[];
  /** How each figure is counted, printed with the report so a reader need not guess. */
  readonly definitions: Readonly<Record<string, string>>;
}

export const REPORT_DEFINITIONS: Readonly<Record<string, string>> = {
  period: 'From the first instant of the period (inclusive) to its end (exclusive), UTC.',
  asOf: 'Facts are taken as they stood at the end of the period, or at the time of the report if earlier.',
  submitted: 'Changes submitted (emergencies: declared) in the period, by type and by calendar month.',
  outcomes: 'Implementations that ended in the period, by outcome.',
  cancelled: 'Changes cancelled in the period.',
  rejected: 'Changes rejected in the period, in review or at approval.',
  successRate: 'Successful implementations / all implementations that ended in the period.',
  emergencyShare: 'Emergency changes / all changes submitted in the period.',
  leadTimes:
    'Hours, median and 90th percentile (linear interpolation between ranks). Submitted → approved: human approvals in the period. Approved → implementation start: starts in the period. Emergency declared → retrospective approval: approvals in the period.',
  overdueRetrospectives: `Emergency changes whose retrospective was due (implementation end + the configured business days) before the as-of time and had no decision by then, whatever period they were implemented in.`,
  lateRetrospectives: 'Retrospective decisions recorded in the period after their due time.',
  retrospectivelyRejected: 'Emergency changes retrospectively rejected in the period.',
  implementedOutsideWindow:
    'Implementations started in the period before or after their scheduled window, or still running (or ended) after its end.',
  failedWithoutReview:
    'Failed or rolled-back implementations ended in the period with no post-implementation review by the as-of time.',
  segregationOfDutiesExceptions:
    'Events in the period that break a segregation-of-duties rule, found by checking the recorded events themselves: the requester reviewing, deciding the approval or the retrospective of their own change; the approver starting the implementation. Zero is expected.',
  staleInReview: `Changes that waited in review (in review or changes requested) more than ${STALE_REVIEW_DAYS} days, in a wait overlapping the period; still waiting if "until" is null.`,
  lessonsLearned: 'Post-implementation reviews recorded in the period.',
};

const inPeriod = (at: string | null | undefined, period: ReportPeriod, asOf: string): at is string =>
  typeof at === 'string' && at >= period.from && at < period.to && at <= asOf;

const hoursBetween = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / HOUR;

/** Rounded for the reader; the raw figures are not more meaningful than that. */
const round2 = (value: number) => Math.round(value * 100) / 100;

/** Percentile with linear interpolation between closest ranks (PERCENTILE.INC). */
export const percentile = (values: readonly number[], p: number): number | null => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
};

const leadTime = (hours: readonly number[]): LeadTime => {
  const median = percentile(hours, 50);
  const p90 = percentile(hours, 90);
  return {
    count: hours.length,
    medianHours: median === null ? null : round2(median),
    p90Hours: p90 === null ? null : round2(p90),
  };
};

const ratio = (part: number, whole: number) =>
  whole === 0 ? null : Math.round((part / whole) * 10_000) / 10_000;

const changeNumber = (changeId: string) => Number(/(\d+)$/.exec(changeId)?.[1] ?? 0);
const byChangeId = (a: { changeId: string }, b: { changeId: string }) =>
  changeNumber(a.changeId) - changeNumber(b.changeId) || a.changeId.localeCompare(b.changeId);

const refOf = (doc: ComplianceFactsDocument): ChangeRef => ({
  changeId: doc.changeId,
  title: doc.title,
  type: doc.type,
});

/**
 * The compliance report of a period from the `compliance_facts` read model: a pure function of
 * the documents (those active in the period or still open), the period and the as-of time.
 */
export const buildComplianceReport = (input: {
  readonly documents: Iterable<ComplianceFactsDocument>;
  readonly period: ReportPeriod;
  readonly now: Date;
  readonly readModelPosition: bigint;
}): ComplianceReport => {
  const { period } = input;
  const nowIso = input.now.toISOString();
  const asOf = nowIso < period.to ? nowIso : new Date(Date.parse(period.to) - 1).toISOString();
  const within = (at: string | null | undefined): at is string => inPeriod(at, period, asOf);
  const happened = (at: string | null | undefined): at is string => typeof at === 'string' && at <= asOf;

  const months = monthsOf(period);
  const byMonth = new Map(months.map((m) => [m, { standard: 0, normal: 0, emergency: 0 }]));
  const submitted = { standard: 0, normal: 0, emergency: 0 };
  const outcomes: Record<Outcome, number> = { successful: 0, failed: 0, 'rolled-back': 0 };
  let cancelled = 0;
  const rejected = { total: 0, inReview: 0, atApproval: 0 };
  const toApproval: number[] = [];
  const toStart: number[] = [];
  const toRetrospective: number[] = [];
  const findings = {
    overdueRetrospectives: [] as ComplianceReport['findings']['overdueRetrospectives'][number][],
    lateRetrospectives: [] as ComplianceReport['findings']['lateRetrospectives'][number][],
    retrospectivelyRejected: [] as ComplianceReport['findings']['retrospectivelyRejected'][number][],
    implementedOutsideWindow: [] as ComplianceReport['findings']['implementedOutsideWindow'][number][],
    failedWithoutReview: [] as ComplianceReport['findings']['failedWithoutReview'][number][],
    segregationOfDutiesExceptions:
      [] as ComplianceReport['findings']['segregationOfDutiesExceptions'][number][],
    staleInReview: [] as ComplianceReport['findings']['staleInReview'][number][],
  };
  const lessons: ComplianceReport['lessonsLearned'][number][] = [];

  for (const doc of input.documents) {
    const ref = refOf(doc);
    if (within(doc.submittedAt)) {
      submitted[doc.type] += 1;
      byMonth.get(doc.submittedAt.slice(0, 7))![doc.type] += 1;
    }
    if (within(doc.cancelledAt)) cancelled += 1;
    if (doc.rejection && within(doc.rejection.at)) {
      rejected.total += 1;
      rejected[doc.rejection.stage === 'review' ? 'inReview' : 'atApproval'] += 1;
    }

    const approval = doc.approval && happened(doc.approval.at) ? doc.approval : null;
    if (approval && approval.level !== 'standard-template' && within(approval.at)) {
      toApproval.push(hoursBetween(doc.submittedAt, approval.at));
    }

    const start =
      doc.implementationStart && happened(doc.implementationStart.at) ? doc.implementationStart : null;
    const completion = doc.completion && happened(doc.completion.at) ? doc.completion : null;
    if (start && within(start.at) && doc.type !== 'emergency') {
      if (approval) toStart.push(hoursBetween(approval.at, start.at));
      const window = doc.schedule;
      if (window) {
        const reasons: ('started-early' | 'started-late' | 'overran')[] = [];
        if (start.at < window.plannedStart) reasons.push('started-early');
        if (start.at > window.plannedEnd) reasons.push('started-late');
        const endedOrNow = completion?.at ?? asOf;
        if (endedOrNow > window.plannedEnd && !reasons.includes('started-late')) reasons.push('overran');
        if (reasons.length > 0) {
          findings.implementedOutsideWindow.push({
            ...ref,
            plannedStart: window.plannedStart,
            plannedEnd: window.plannedEnd,
            startedAt: start.at,
            completedAt: completion?.at ?? null,
            reasons,
          });
        }
      }
    }

    const review =
      doc.postImplementationReview && happened(doc.postImplementationReview.at)
        ? doc.postImplementationReview
        : null;
    if (completion && within(completion.at)) {
      outcomes[completion.outcome] += 1;
      if (completion.outcome !== 'successful' && !review) {
        findings.failedWithoutReview.push({
          ...ref,
          outcome: completion.outcome,
          completedAt: completion.at,
        });
      }
    }
    if (review && within(review.at)) {
      lessons.push({
        ...ref,
        at: review.at,
        by: review.by,
        lessonsLearned: review.lessonsLearned,
        improvements: review.improvements,
        issues: review.issues,
      });
    }

    const decision = doc.retrospective && happened(doc.retrospective.at) ? doc.retrospective : null;
    if (doc.type === 'emergency' && completion && doc.retrospectiveDueAt) {
      const dueAt = doc.retrospectiveDueAt;
      if (!decision && dueAt < asOf) {
        findings.overdueRetrospectives.push({ ...ref, dueAt, implementedAt: completion.at });
      }
      if (decision && within(decision.at) && decision.at > dueAt) {
        findings.lateRetrospectives.push({ ...ref, dueAt, decidedAt: decision.at });
      }
    }
    if (decision && within(decision.at)) {
      if (decision.decision === 'reject') {
        findings.retrospectivelyRejected.push({ ...ref, decidedAt: decision.at, by: decision.by });
      } else {
        toRetrospective.push(hoursBetween(doc.submittedAt, decision.at));
      }
    }

    for (const exception of doc.dutyExceptions) {
      if (within(exception.at)) findings.segregationOfDutiesExceptions.push({ ...ref, ...exception });
    }

    // The longest review wait overlapping the period, if it passed the threshold.
    let stale: ComplianceReport['findings']['staleInReview'][number] | undefined;
    for (const interval of doc.reviewIntervals) {
      if (interval.from > asOf) continue;
      const until = interval.to !== null && interval.to <= asOf ? interval.to : null;
      const end = until ?? asOf;
      if (end < period.from) continue;
      const days = (Date.parse(end) - Date.parse(interval.from)) / DAY;
      if (days > STALE_REVIEW_DAYS && (!stale || days > stale.days)) {
        stale = { ...ref, since: interval.from, until, days: Math.round(days * 10) / 10 };
      }
    }
    if (stale) findings.staleInReview.push(stale);
  }

  const total = submitted.standard + submitted.normal + submitted.emergency;
  const ended = outcomes.successful + outcomes.failed + outcomes['rolled-back'];
  return {
    period,
    asOf,
    generatedAt: nowIso,
    readModelPosition: input.readModelPosition.toString(),
    volumes: {
      submitted: { total, ...submitted },
      byMonth: months.map((month) => ({ month, ...byMonth.get(month)! })),
      outcomes,
      cancelled,
      rejected,
      retrospectivelyRejected: findings.retrospectivelyRejected.length,
    },
    successRate: ratio(outcomes.successful, ended),
    emergencyShare: ratio(submitted.emergency, total),
    leadTimes: {
      submittedToApproved: leadTime(toApproval),
      approvedToImplementationStart: leadTime(toStart),
      emergencyDeclaredToRetrospectiveApproval: leadTime(toRetrospective),
    },
    findings: {
      overdueRetrospectives: findings.overdueRetrospectives.sort(byChangeId),
      lateRetrospectives: findings.lateRetrospectives.sort(byChangeId),
      retrospectivelyRejected: findings.retrospectivelyRejected.sort(byChangeId),
      implementedOutsideWindow: findings.implementedOutsideWindow.sort(byChangeId),
      failedWithoutReview: findings.failedWithoutReview.sort(byChangeId),
      segregationOfDutiesExceptions: findings.segregationOfDutiesExceptions.sort(
        (a, b) => byChangeId(a, b) || Number(a.revision) - Number(b.revision),
      ),
      staleInReview: findings.staleInReview.sort(byChangeId),
    },
    lessonsLearned: lessons.sort((a, b) => a.at.localeCompare(b.at) || byChangeId(a, b)),
    definitions: REPORT_DEFINITIONS,
  };
};

export const FINDING_TITLES: Readonly<Record<keyof ComplianceReport['findings'], string>> = {
  overdueRetrospectives: 'Emergency changes with an overdue retrospective approval',
  lateRetrospectives: 'Emergency changes approved retrospectively after the due time',
  retrospectivelyRejected: 'Emergency changes rejected retrospectively',
  implementedOutsideWindow: 'Changes implemented outside their scheduled window',
  failedWithoutReview: 'Failed or rolled-back changes without a post-implementation review',
  segregationOfDutiesExceptions: 'Segregation-of-duties exceptions',
  staleInReview: `Changes stale in review for more than ${STALE_REVIEW_DAYS} days`,
};
