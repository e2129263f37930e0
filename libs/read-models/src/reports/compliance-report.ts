import type { ActorRef, ChangeType, Outcome } from '@changeledger/domain';
import type {
  ComplianceFactsDocument,
  DutyRule,
  RetrospectiveFact,
} from '../projections/compliance-facts.projection';
import { addBusinessDays } from '../projections/business-days';
import { monthsOf, type ReportPeriod } from './report-period';

/** A change waiting for review or approval longer than this is a finding (the issue's 14 days). */
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
  /**
   * What the reader must know about the figures, e.g. facts written by an older version of
   * their projection (counted by another definition until `projections:rebuild`).
   */
  readonly warnings: readonly string[];
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
  /** What the segregation-of-duties check covered: a zero means something only next to these. */
  readonly segregationOfDutiesChecks: { readonly changes: number; readonly controlEvents: number };
  /** The settings the figures depend on, as they were when the report was made. */
  readonly settings: ReportSettings;
  readonly findings: {
    readonly overdueRetrospectives: readonly (ChangeRef & {
      readonly dueAt: string;
      readonly implementedAt: string;
    })[];
    readonly emergenciesStillAtWork: readonly (ChangeRef & {
      readonly declaredAt: string;
      /** RETROSPECTIVE_DUE_BUSINESS_DAYS business days after the declaration. */
      readonly flaggedAfter: string;
      /** When it was completed, after `flaggedAfter`; null: still at work at the as-of time. */
      readonly completedAt: string | null;
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
      /** POST_IMPLEMENTATION_REVIEW_DUE_BUSINESS_DAYS business days after the completion. */
      readonly reviewDueAt: string;
    })[];
    /** As failedWithoutReview, for successful normal and standard ones (the process reviews every change). */
    readonly succeededWithoutReview: readonly (ChangeRef & {
      readonly completedAt: string;
      readonly reviewDueAt: string;
    })[];
    readonly unnotifiedEmergencies: readonly (ChangeRef & {
      readonly startedAt: string;
      readonly completedAt: string;
    })[];
    readonly undocumentedImplementations: readonly (ChangeRef & {
      readonly outcome: Outcome;
      readonly completedAt: string;
    })[];
    readonly failuresWithoutIssues: readonly (ChangeRef & {
      readonly outcome: Outcome;
      readonly completedAt: string;
      readonly closedAt: string;
    })[];
    readonly documentationNotUpdated: readonly (ChangeRef & {
      readonly reviewedAt: string;
      readonly by: ActorRef;
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
  asOf: 'Facts are taken as they stood at the end of the period, or at the time of the report if earlier, by the time each event records (an event recorded late, e.g. imported, changes the report of its period; readModelPosition says which events a report includes).',
  submitted: 'Changes submitted (emergencies: declared) in the period, by type and by calendar month.',
  outcomes: 'Implementations that ended in the period, by outcome.',
  cancelled: 'Changes cancelled in the period.',
  rejected: 'Changes rejected in the period, in review or at approval.',
  successRate: 'Successful implementations / all implementations that ended in the period.',
  emergencyShare: 'Emergency changes / all changes submitted in the period.',
  leadTimes:
    'Hours, median and 90th percentile (linear interpolation between ranks, PERCENTILE.INC). Submitted → approved: normal changes approved in the period. Approved → implementation start: normal changes started in the period (standard changes are approved by their template at submission and are left out). Emergency declared → retrospective approval: approvals in the period.',
  overdueRetrospectives:
    'Emergency changes whose retrospective approval was due (implementation end + RETROSPECTIVE_DUE_BUSINESS_DAYS business days) before the as-of time and had no decision by then, whichever period they were implemented in.',
  emergenciesStillAtWork:
    'Emergency changes at work more than RETROSPECTIVE_DUE_BUSINESS_DAYS business days after their declaration: not completed by the as-of time, whichever period they were declared in; or completed after that limit, in the period the limit passed in (completedAt). The retrospective approval is due only after the implementation ends, so an emergency left at work would otherwise never be a finding.',
  settings:
    'The settings the figures depend on (RETROSPECTIVE_DUE_BUSINESS_DAYS, POST_IMPLEMENTATION_REVIEW_DUE_BUSINESS_DAYS), as they were when the report was made: the report of a past period made with other settings differs.',
  lateRetrospectives: 'Retrospective decisions recorded in the period after their due time.',
  retrospectivelyRejected: 'Emergency changes retrospectively rejected in the period.',
  implementedOutsideWindow:
    'Implementations started in the period before or after their scheduled window, or still running (or ended) after its end; and implementations started earlier, inside their window, that were still running when it ended in the period (overran: such a change can be listed in two periods, for its start and for its overrun).',
  failedWithoutReview:
    'Failed or rolled-back implementations whose post-implementation review was due (implementation end + POST_IMPLEMENTATION_REVIEW_DUE_BUSINESS_DAYS business days, as GET /follow-ups has it) before the as-of time and not recorded by then, whichever period they ended in.',
  succeededWithoutReview:
    'Successful normal and standard implementations whose post-implementation review was due in the same way and not recorded by then, whichever period they ended in: the process reviews every change ("post-implementation review", "lessons learned"), and one left unreviewed is never closed. Not emergencies: their review is part of the retrospective, which overdueRetrospectives names.',
  unnotifiedEmergencies:
    'Emergency changes whose implementation ended in the period with no record that stakeholders were notified (the checklist item stakeholders-notified, which the process asks for while an emergency is implemented). Facts written before this was tracked (compliance_facts version 4 or older) are not judged.',
  undocumentedImplementations:
    'Normal and standard changes whose implementation ended in the period with no implementation step recorded (the process: "document steps taken"). Not emergencies, which the process lets document during or after the work (an amendment of the request, the post-implementation review). Facts written before this was tracked (compliance_facts version 6 or older) are not judged.',
  failuresWithoutIssues:
    'Failed or rolled-back changes closed in the period with nothing written down about what went wrong by those who did the work: no issue recorded, no notes on a failed verification or on the completion, no issues in the post-implementation review (the process: "document any issues"; a retrospective decision\'s comment, management\'s, does not count). Facts written before this was tracked (compliance_facts version 8 or older) are not judged.',
  documentationNotUpdated:
    'Post-implementation reviews recorded in the period that say the documentation was not updated (documentationUpdated false; the process: "update documentation"). A review is recorded once: the finding stays with its period.',
  segregationOfDutiesExceptions:
    "Events in the period that break a segregation-of-duties rule, judged by the authenticated sender of each event (not trusting the rules that should have refused them): the requester reviewing, deciding the approval or the retrospective of their own change; the approver starting the implementation or recording its work (steps, issues, verification, completion); someone who worked on an emergency deciding its retrospective; an event naming someone other than its sender. Zero is expected (but the approver's implementation work was refused only from 2026-11-29: facts rebuilt since list such work recorded before, and count it among the checks); segregationOfDutiesChecks says how many control events (reviews, approval decisions, the start and the implementation work of approved changes, retrospective decisions) were checked against the rules; the check that an event names its own sender covers every event, counted there or not.",
  staleInReview: `Changes that waited for review or approval (in review, changes requested, awaiting approval) more than ${STALE_REVIEW_DAYS} days, in a wait overlapping the period; still waiting if "until" is null; days rounded up to a tenth.`,
  lessonsLearned: 'Post-implementation reviews recorded in the period.',
};

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

type Findings = {
  -readonly [K in keyof ComplianceReport['findings']]: ComplianceReport['findings'][K][number][];
};

export interface ReportSettings {
  /** RETROSPECTIVE_DUE_BUSINESS_DAYS. */
  readonly retrospectiveDueBusinessDays: number;
  /** POST_IMPLEMENTATION_REVIEW_DUE_BUSINESS_DAYS. */
  readonly postImplementationReviewDueBusinessDays: number;
}

/** The report's settings out of a larger object (the service's configuration): those alone. */
const reportSettings = (from: ReportSettings): ReportSettings => ({
  retrospectiveDueBusinessDays: from.retrospectiveDueBusinessDays,
  postImplementationReviewDueBusinessDays: from.postImplementationReviewDueBusinessDays,
});

/**
 * Folds `compliance_facts` documents one at a time into the report of a period as of a time, so
 * a long period never holds all its changes in memory: only the findings and the lead times.
 */
export class ComplianceReportBuilder {
  private readonly asOf: string;
  private readonly months: string[];
  private readonly byMonth: Map<string, Record<ChangeType, number>>;
  private readonly submitted: Record<ChangeType, number> = { standard: 0, normal: 0, emergency: 0 };
  private readonly outcomes: Record<Outcome, number> = { successful: 0, failed: 0, 'rolled-back': 0 };
  private cancelled = 0;
  private readonly rejected = { total: 0, inReview: 0, atApproval: 0 };
  private readonly toApproval: number[] = [];
  private readonly toStart: number[] = [];
  private readonly toRetrospective: number[] = [];
  private readonly checks = { changes: 0, controlEvents: 0 };
  private readonly findings: Findings = {
    overdueRetrospectives: [],
    emergenciesStillAtWork: [],
    lateRetrospectives: [],
    retrospectivelyRejected: [],
    implementedOutsideWindow: [],
    failedWithoutReview: [],
    succeededWithoutReview: [],
    unnotifiedEmergencies: [],
    undocumentedImplementations: [],
    failuresWithoutIssues: [],
    documentationNotUpdated: [],
    segregationOfDutiesExceptions: [],
    staleInReview: [],
  };
  private readonly lessons: ComplianceReport['lessonsLearned'][number][] = [];
  private readonly seen = new Set<string>();

  private readonly settings: ReportSettings;

  constructor(
    private readonly period: ReportPeriod,
    private readonly now: Date,
    settings: ReportSettings,
  ) {
    // Only the settings the report names: the API and the CLI hand it the service's whole
    // configuration (which fits the type), whose secrets a copy would carry into the answer.
    this.settings = reportSettings(settings);
    const nowIso = now.toISOString();
    this.asOf = nowIso < period.to ? nowIso : new Date(Date.parse(period.to) - 1).toISOString();
    this.months = monthsOf(period);
    this.byMonth = new Map(this.months.map((m) => [m, { standard: 0, normal: 0, emergency: 0 }]));
  }

  /** In the period and not after the as-of time. */
  private within(at: string | null | undefined): at is string {
    return typeof at === 'string' && at >= this.period.from && at < this.period.to && at <= this.asOf;
  }

  private happened(at: string | null | undefined): at is string {
    return typeof at === 'string' && at <= this.asOf;
  }

  /** Adds one change; a change seen before is ignored (the loader may meet it twice). */
  add(doc: ComplianceFactsDocument): void {
    if (this.seen.has(doc.id)) return;
    this.seen.add(doc.id);
    if (doc.submittedAt > this.asOf) return;
    const ref = refOf(doc);
    const { findings } = this;
    if (this.within(doc.submittedAt)) {
      this.submitted[doc.type] += 1;
      this.byMonth.get(doc.submittedAt.slice(0, 7))![doc.type] += 1;
    }
    if (this.within(doc.cancelledAt)) this.cancelled += 1;
    if (doc.rejection && this.within(doc.rejection.at)) {
      this.rejected.total += 1;
      this.rejected[doc.rejection.stage === 'review' ? 'inReview' : 'atApproval'] += 1;
    }

    const approval = doc.approval && this.happened(doc.approval.at) ? doc.approval : null;
    if (approval && doc.type === 'normal' && this.within(approval.at)) {
      this.toApproval.push(hoursBetween(doc.submittedAt, approval.at));
    }

    const start =
      doc.implementationStart && this.happened(doc.implementationStart.at) ? doc.implementationStart : null;
    const completion = doc.completion && this.happened(doc.completion.at) ? doc.completion : null;
    if (start && this.within(start.at) && doc.type !== 'emergency') {
      if (approval && doc.type === 'normal') this.toStart.push(hoursBetween(approval.at, start.at));
      const window = doc.schedule;
      if (window) {
        const startMs = Date.parse(start.at);
        const plannedStart = Date.parse(window.plannedStart);
        const plannedEnd = Date.parse(window.plannedEnd);
        const reasons: ('started-early' | 'started-late' | 'overran')[] = [];
        if (startMs < plannedStart) reasons.push('started-early');
        if (startMs > plannedEnd) reasons.push('started-late');
        else if (Date.parse(completion?.at ?? this.asOf) > plannedEnd) reasons.push('overran');
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
    } else if (start && doc.type !== 'emergency' && doc.schedule && !this.within(start.at)) {
      // Started in an earlier period, inside its window, and still running when the window ended
      // in this one: the start's report could not see the overrun (its as-of came before the
      // planned end). Reported in the period of the planned end, whether the implementation
      // ended in it, later or not yet; an end in an earlier period was seen there.
      const { plannedStart, plannedEnd } = doc.schedule;
      const end = Date.parse(plannedEnd);
      const endsHere = this.within(plannedEnd);
      const ranPast = Date.parse(completion?.at ?? this.asOf) > end;
      if (Date.parse(start.at) <= end && endsHere && ranPast) {
        findings.implementedOutsideWindow.push({
          ...ref,
          plannedStart,
          plannedEnd,
          startedAt: start.at,
          completedAt: completion?.at ?? null,
          reasons: ['overran'],
        });
      }
    }

    const review =
      doc.postImplementationReview && this.happened(doc.postImplementationReview.at)
        ? doc.postImplementationReview
        : null;
    if (completion && this.within(completion.at)) this.outcomes[completion.outcome] += 1;
    if (completion && !review) {
      // due as GET /follow-ups has it: an implementation of the period's last hour is no finding yet
      const reviewDueAt = addBusinessDays(
        completion.at,
        this.settings.postImplementationReviewDueBusinessDays,
      );
      if (reviewDueAt < this.asOf) {
        if (completion.outcome === 'successful') {
          // an emergency's review is part of its retrospective: overdueRetrospectives names it
          if (doc.type !== 'emergency')
            findings.succeededWithoutReview.push({ ...ref, completedAt: completion.at, reviewDueAt });
        } else {
          findings.failedWithoutReview.push({
            ...ref,
            outcome: completion.outcome,
            completedAt: completion.at,
            reviewDueAt,
          });
        }
      }
    }
    if (
      doc.type === 'emergency' &&
      completion &&
      this.within(completion.at) &&
      doc.stakeholdersNotifiedAt !== undefined &&
      (doc.stakeholdersNotifiedAt === null || doc.stakeholdersNotifiedAt > completion.at)
    ) {
      findings.unnotifiedEmergencies.push({
        ...ref,
        startedAt: doc.implementationStart?.at ?? doc.submittedAt,
        completedAt: completion.at,
      });
    }
    // Not emergencies: the process documents them "during/after", which the request's amendment
    // and the post-implementation review carry, not only the steps recorded while at work. Any
    // step by the as-of time counts (steps are only recorded before the completion, whatever the
    // clocks of the instances that recorded them said).
    if (
      completion &&
      this.within(completion.at) &&
      doc.type !== 'emergency' &&
      doc.firstStepAt !== undefined
    ) {
      if (doc.firstStepAt === null || doc.firstStepAt > this.asOf) {
        findings.undocumentedImplementations.push({
          ...ref,
          outcome: completion.outcome,
          completedAt: completion.at,
        });
      }
    }
    if (
      completion &&
      completion.outcome !== 'successful' &&
      this.within(doc.closedAt) &&
      doc.issuesDocumentedAt === null
    ) {
      // null: nothing by the close, after which nothing can be recorded
      findings.failuresWithoutIssues.push({
        ...ref,
        outcome: completion.outcome,
        completedAt: completion.at,
        closedAt: doc.closedAt,
      });
    }
    if (review && this.within(review.at)) {
      if (review.documentationUpdated === false) {
        findings.documentationNotUpdated.push({ ...ref, reviewedAt: review.at, by: review.by });
      }
      this.lessons.push({
        ...ref,
        at: review.at,
        by: review.by,
        lessonsLearned: review.lessonsLearned,
        improvements: review.improvements,
        issues: review.issues,
      });
    }

    // The decision standing as of the report: the latest made by then and not made void by then
    // (an amendment voids an approval: the approval still counts in a report as of before it).
    const decisions: (RetrospectiveFact & { readonly voidedAt?: string })[] = [
      ...(doc.voidedRetrospectives ?? []),
      ...(doc.retrospective ? [doc.retrospective] : []),
    ];
    const decision =
      decisions.filter((d) => this.happened(d.at) && !this.happened(d.voidedAt)).at(-1) ?? null;
    if (doc.type === 'emergency') {
      // At work past the limit: still, at the as-of time (whichever period it was declared in),
      // or until a completion after it, in the period the limit passed in (the completion is
      // then in it too): a report as of a later time would see only the completion, and the due
      // time of its retrospective counts from there, so the long stretch at work would show in
      // no report (as an overrun of a normal change shows in the period of its planned end).
      const flaggedAfter = addBusinessDays(doc.submittedAt, this.settings.retrospectiveDueBusinessDays);
      if (
        !completion ? flaggedAfter < this.asOf : completion.at > flaggedAfter && this.within(flaggedAfter)
      ) {
        findings.emergenciesStillAtWork.push({
          ...ref,
          declaredAt: doc.submittedAt,
          flaggedAfter,
          completedAt: completion?.at ?? null,
        });
      }
    }
    if (doc.type === 'emergency' && completion) {
      const dueAt = addBusinessDays(completion.at, this.settings.retrospectiveDueBusinessDays);
      if (!decision && dueAt < this.asOf) {
        findings.overdueRetrospectives.push({ ...ref, dueAt, implementedAt: completion.at });
      }
      if (decision && this.within(decision.at) && decision.at > dueAt) {
        findings.lateRetrospectives.push({ ...ref, dueAt, decidedAt: decision.at });
      }
    }
    if (decision && this.within(decision.at)) {
      if (decision.decision === 'reject') {
        findings.retrospectivelyRejected.push({ ...ref, decidedAt: decision.at, by: decision.by });
      } else {
        this.toRetrospective.push(hoursBetween(doc.submittedAt, decision.at));
      }
    }

    const checked = doc.controlEvents.filter((at) => this.within(at)).length;
    if (checked > 0) {
      this.checks.changes += 1;
      this.checks.controlEvents += checked;
    }
    for (const exception of doc.dutyExceptions) {
      if (this.within(exception.at)) findings.segregationOfDutiesExceptions.push({ ...ref, ...exception });
    }

    // The longest wait overlapping the period, if it passed the threshold.
    let stale: Findings['staleInReview'][number] | undefined;
    for (const interval of doc.reviewIntervals) {
      if (interval.from > this.asOf) continue;
      const until = interval.to !== null && interval.to <= this.asOf ? interval.to : null;
      const end = until ?? this.asOf;
      if (end <= this.period.from) continue; // [from, end) ends before the period begins
      const days = (Date.parse(end) - Date.parse(interval.from)) / DAY;
      if (days > STALE_REVIEW_DAYS && (!stale || days > stale.days)) {
        // up: a wait of 14 days and an hour, shown as 14.0, would not read as more than 14
        stale = { ...ref, since: interval.from, until, days: Math.ceil(days * 10) / 10 };
      }
    }
    if (stale) findings.staleInReview.push(stale);
  }

  build(readModelPosition: bigint): ComplianceReport {
    const { submitted, outcomes, findings } = this;
    const total = submitted.standard + submitted.normal + submitted.emergency;
    const ended = outcomes.successful + outcomes.failed + outcomes['rolled-back'];
    return {
      period: this.period,
      asOf: this.asOf,
      generatedAt: this.now.toISOString(),
      readModelPosition: readModelPosition.toString(),
      warnings: [],
      volumes: {
        submitted: { total, ...submitted },
        byMonth: this.months.map((month) => ({ month, ...this.byMonth.get(month)! })),
        outcomes: { ...outcomes },
        cancelled: this.cancelled,
        rejected: { ...this.rejected },
        retrospectivelyRejected: findings.retrospectivelyRejected.length,
      },
      successRate: ratio(outcomes.successful, ended),
      emergencyShare: ratio(submitted.emergency, total),
      leadTimes: {
        submittedToApproved: leadTime(this.toApproval),
        approvedToImplementationStart: leadTime(this.toStart),
        emergencyDeclaredToRetrospectiveApproval: leadTime(this.toRetrospective),
      },
      segregationOfDutiesChecks: { ...this.checks },
      settings: { ...this.settings },
      findings: {
        overdueRetrospectives: [...findings.overdueRetrospectives].sort(byChangeId),
        emergenciesStillAtWork: [...findings.emergenciesStillAtWork].sort(byChangeId),
        lateRetrospectives: [...findings.lateRetrospectives].sort(byChangeId),
        retrospectivelyRejected: [...findings.retrospectivelyRejected].sort(byChangeId),
        implementedOutsideWindow: [...findings.implementedOutsideWindow].sort(byChangeId),
        failedWithoutReview: [...findings.failedWithoutReview].sort(byChangeId),
        succeededWithoutReview: [...findings.succeededWithoutReview].sort(byChangeId),
        unnotifiedEmergencies: [...findings.unnotifiedEmergencies].sort(byChangeId),
        undocumentedImplementations: [...findings.undocumentedImplementations].sort(byChangeId),
        failuresWithoutIssues: [...findings.failuresWithoutIssues].sort(byChangeId),
        documentationNotUpdated: [...findings.documentationNotUpdated].sort(byChangeId),
        segregationOfDutiesExceptions: [...findings.segregationOfDutiesExceptions].sort(
          (a, b) => byChangeId(a, b) || Number(a.revision) - Number(b.revision),
        ),
        staleInReview: [...findings.staleInReview].sort(byChangeId),
      },
      lessonsLearned: [...this.lessons].sort((a, b) => a.at.localeCompare(b.at) || byChangeId(a, b)),
      definitions: REPORT_DEFINITIONS,
    };
  }
}

/**
 * The compliance report of a period from the `compliance_facts` read model: a pure function of
 * the documents (those active in the period or still open), the period and the as-of time.
 */
export const buildComplianceReport = (input: {
  readonly documents: Iterable<ComplianceFactsDocument>;
  readonly period: ReportPeriod;
  readonly now: Date;
  readonly readModelPosition: bigint;
  readonly settings?: ReportSettings;
}): ComplianceReport => {
  const builder = new ComplianceReportBuilder(
    input.period,
    input.now,
    input.settings ?? { retrospectiveDueBusinessDays: 2, postImplementationReviewDueBusinessDays: 5 },
  );
  for (const doc of input.documents) builder.add(doc);
  return builder.build(input.readModelPosition);
};

export const FINDING_TITLES: Readonly<Record<keyof ComplianceReport['findings'], string>> = {
  overdueRetrospectives: 'Emergency changes with an overdue retrospective approval',
  emergenciesStillAtWork:
    'Emergency changes at work past the time a retrospective would have been due (still, or until they were completed)',
  // a late rejection is late too (and also listed as rejected)
  lateRetrospectives: 'Emergency changes whose retrospective decision came after the due time',
  retrospectivelyRejected: 'Emergency changes rejected retrospectively',
  implementedOutsideWindow: 'Changes implemented outside their scheduled window',
  failedWithoutReview: 'Failed or rolled-back changes without a post-implementation review',
  succeededWithoutReview: 'Successful changes without a post-implementation review',
  unnotifiedEmergencies: 'Emergency changes with no record that stakeholders were notified',
  undocumentedImplementations: 'Implementations with no step recorded (normal and standard changes)',
  failuresWithoutIssues: 'Failed or rolled-back changes closed with no issue written down',
  documentationNotUpdated: 'Post-implementation reviews saying the documentation was not updated',
  segregationOfDutiesExceptions: 'Segregation-of-duties exceptions',
  staleInReview: `Changes waiting for review or approval for more than ${STALE_REVIEW_DAYS} days`,
};
