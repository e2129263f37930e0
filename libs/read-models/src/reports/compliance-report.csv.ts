import { csvCell as cell } from '../csv';
import { type ComplianceReport, FINDING_TITLES, type LeadTime } from './compliance-report';

type Row = [
  section: string,
  metric: string,
  value: string | number | null,
  changeId?: string,
  detail?: string,
];

const leadTimeRows = (name: string, t: LeadTime): Row[] => [
  ['lead-time', `${name}.count`, t.count],
  ['lead-time', `${name}.median-hours`, t.medianHours],
  ['lead-time', `${name}.p90-hours`, t.p90Hours],
];

/**
 * One table a spreadsheet can filter: `section, metric, value, changeId, detail`. Figures are
 * one row each; every finding and every lesson is one row naming its change.
 */
export const complianceReportCsv = (report: ComplianceReport): string => {
  const v = report.volumes;
  const f = report.findings;
  const rows: Row[] = [
    ['period', 'label', report.period.label],
    ['period', 'from', report.period.from],
    ['period', 'to', report.period.to],
    ['period', 'as-of', report.asOf],
    ['period', 'generated-at', report.generatedAt],
    ['setting', 'retrospective-due-business-days', report.settings.retrospectiveDueBusinessDays],
    [
      'setting',
      'post-implementation-review-due-business-days',
      report.settings.postImplementationReviewDueBusinessDays,
    ],
    ['period', 'read-model-position', report.readModelPosition],
    ...report.warnings.map((text): Row => ['warning', 'read-models', text]),
    ['volume', 'submitted.total', v.submitted.total],
    ['volume', 'submitted.standard', v.submitted.standard],
    ['volume', 'submitted.normal', v.submitted.normal],
    ['volume', 'submitted.emergency', v.submitted.emergency],
    ...v.byMonth.flatMap((m): Row[] => [
      ['volume-by-month', `${m.month}.standard`, m.standard],
      ['volume-by-month', `${m.month}.normal`, m.normal],
      ['volume-by-month', `${m.month}.emergency`, m.emergency],
    ]),
    ['outcome', 'successful', v.outcomes.successful],
    ['outcome', 'failed', v.outcomes.failed],
    ['outcome', 'rolled-back', v.outcomes['rolled-back']],
    ['volume', 'cancelled', v.cancelled],
    ['volume', 'rejected.total', v.rejected.total],
    ['volume', 'rejected.in-review', v.rejected.inReview],
    ['volume', 'rejected.at-approval', v.rejected.atApproval],
    ['volume', 'retrospectively-rejected', v.retrospectivelyRejected],
    ['rate', 'success-rate', report.successRate],
    ['rate', 'emergency-share', report.emergencyShare],
    ...leadTimeRows('submitted-to-approved', report.leadTimes.submittedToApproved),
    ...leadTimeRows('approved-to-implementation-start', report.leadTimes.approvedToImplementationStart),
    ...leadTimeRows(
      'emergency-declared-to-retrospective-approval',
      report.leadTimes.emergencyDeclaredToRetrospectiveApproval,
    ),
    // what the segregation-of-duties finding looked at: zero exceptions means something only with it
    ['sod-checked', 'changes', report.segregationOfDutiesChecks.changes],
    ['sod-checked', 'control-events', report.segregationOfDutiesChecks.controlEvents],
    ...(Object.keys(FINDING_TITLES) as (keyof typeof FINDING_TITLES)[]).map((key): Row => [
      'finding-count',
      key,
      f[key].length,
    ]),
    ...f.overdueRetrospectives.map((x): Row => [
      'finding',
      'overdueRetrospectives',
      1,
      x.changeId,
      `due ${x.dueAt}`,
    ]),
    ...f.emergenciesStillAtWork.map((x): Row => [
      'finding',
      'emergenciesStillAtWork',
      1,
      x.changeId,
      x.completedAt === null
        ? `declared ${x.declaredAt}, not completed ${x.flaggedAfter} or since`
        : `declared ${x.declaredAt}, completed ${x.completedAt}, after ${x.flaggedAfter}`,
    ]),
    ...f.lateRetrospectives.map((x): Row => [
      'finding',
      'lateRetrospectives',
      1,
      x.changeId,
      `due ${x.dueAt}, decided ${x.decidedAt}`,
    ]),
    ...f.retrospectivelyRejected.map((x): Row => [
      'finding',
      'retrospectivelyRejected',
      1,
      x.changeId,
      `rejected ${x.decidedAt} by ${x.by.name}`,
    ]),
    ...f.implementedOutsideWindow.map((x): Row => [
      'finding',
      'implementedOutsideWindow',
      1,
      x.changeId,
      `${x.reasons.join(' ')}: window ${x.plannedStart} – ${x.plannedEnd}, started ${x.startedAt}, ended ${x.completedAt ?? '(running)'}`,
    ]),
    ...f.failedWithoutReview.map((x): Row => [
      'finding',
      'failedWithoutReview',
      1,
      x.changeId,
      `${x.outcome} ${x.completedAt}, review due ${x.reviewDueAt}`,
    ]),
    ...f.succeededWithoutReview.map((x): Row => [
      'finding',
      'succeededWithoutReview',
      1,
      x.changeId,
      `successful ${x.completedAt}, review due ${x.reviewDueAt}`,
    ]),
    ...f.unnotifiedEmergencies.map((x): Row => [
      'finding',
      'unnotifiedEmergencies',
      1,
      x.changeId,
      `started ${x.startedAt}, ended ${x.completedAt}`,
    ]),
    ...f.undocumentedImplementations.map((x): Row => [
      'finding',
      'undocumentedImplementations',
      1,
      x.changeId,
      `${x.outcome} ${x.completedAt}`,
    ]),
    ...f.failuresWithoutIssues.map((x): Row => [
      'finding',
      'failuresWithoutIssues',
      1,
      x.changeId,
      `${x.outcome} ${x.completedAt}, closed ${x.closedAt}`,
    ]),
    ...f.documentationNotUpdated.map((x): Row => [
      'finding',
      'documentationNotUpdated',
      1,
      x.changeId,
      `reviewed ${x.reviewedAt} by ${x.by.name}`,
    ]),
    ...f.segregationOfDutiesExceptions.map((x): Row => [
      'finding',
      'segregationOfDutiesExceptions',
      1,
      x.changeId,
      `${x.rule}: ${x.eventType} by ${x.actor.name} (${x.actor.id}) at ${x.at}, revision ${x.revision}`,
    ]),
    ...f.staleInReview.map((x): Row => [
      'finding',
      'staleInReview',
      x.days,
      x.changeId,
      `in review since ${x.since}${x.until ? ` until ${x.until}` : ' (still waiting)'}`,
    ]),
    ...report.lessonsLearned.flatMap((l): Row[] => [
      ['lesson', 'lessons-learned', l.at, l.changeId, l.lessonsLearned],
      ['lesson', 'reviewed-by', l.at, l.changeId, `${l.by.name} (${l.by.id})`],
      ...(l.issues ? [['lesson', 'issues', l.at, l.changeId, l.issues] as Row] : []),
      ...l.improvements.map((i): Row => ['lesson', 'improvement', l.at, l.changeId, i]),
    ]),
    // how each figure is counted, as the JSON and the page say it: a zero means something only with it
    ...Object.entries(report.definitions).map(([key, text]): Row => [
      'definition',
      key,
      null,
      undefined,
      text,
    ]),
  ];
  const header = ['section', 'metric', 'value', 'changeId', 'detail'].join(',');
  return (
    [header, ...rows.map((r) => [r[0], r[1], r[2], r[3] ?? null, r[4] ?? null].map(cell).join(','))].join(
      '\r\n',
    ) + '\r\n'
  );
};
