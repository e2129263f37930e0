import { CHANGE_TYPES, type ChangeType, withoutControlCharacters } from '@changeledger/domain';
import { type ComplianceReport, FINDING_TITLES, type LeadTime } from './compliance-report';

/** Everything users typed goes through this: the page must never run or load anything. */
const esc = (value: unknown): string =>
  withoutControlCharacters(String(value ?? '')).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

const TYPE_COLOURS: Record<ChangeType, string> = {
  standard: '#4c78a8',
  normal: '#f58518',
  emergency: '#e45756',
};
const TYPE_WORDS: Record<ChangeType, string> = {
  standard: 'Standard',
  normal: 'Normal',
  emergency: 'Emergency',
};

const percent = (value: number | null) => (value === null ? '–' : `${(value * 100).toFixed(1)} %`);
const hours = (value: number | null) => (value === null ? '–' : `${value.toFixed(2)} h`);
/**
 * Minutes are enough to read, unless the seconds say something (a decision 30 s after its due
 * time is late, and would show the same minute as it); the JSON has the exact instants.
 */
const day = (iso: string | null) => {
  if (!iso) return '–';
  const text = String(iso);
  const seconds = text.slice(17, 19);
  return esc(`${text.slice(0, 16).replace('T', ' ')}${seconds && seconds !== '00' ? `:${seconds}` : ''} UTC`);
};

/** A nice upper bound for an axis: 1, 2, 5 × 10^n. */
const niceMax = (max: number) => {
  if (max <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  return ([1, 2, 5, 10].map((m) => m * magnitude).find((m) => m >= max) ?? max) as number;
};

/** Stacked columns: changes submitted per month, by type. */
const monthsChart = (report: ComplianceReport): string => {
  const months = report.volumes.byMonth;
  const width = 640;
  const height = 260;
  const left = 40;
  const bottom = 40;
  const top = 30;
  const plotHeight = height - bottom - top;
  const max = niceMax(Math.max(0, ...months.map((m) => m.standard + m.normal + m.emergency)));
  const slot = (width - left - 10) / Math.max(1, months.length);
  const barWidth = Math.min(60, slot * 0.6);
  const y = (value: number) => top + plotHeight - (value / max) * plotHeight;
  const ticks = [0, max / 2, max];
  const bars = months.map((m, i) => {
    const x = left + slot * i + (slot - barWidth) / 2;
    let base = 0;
    const segments = CHANGE_TYPES.map((type) => {
      const value = m[type];
      if (value === 0) return '';
      const rect = `<rect x="${x.toFixed(1)}" y="${y(base + value).toFixed(1)}" width="${barWidth.toFixed(1)}" height="${(y(base) - y(base + value)).toFixed(1)}" fill="${TYPE_COLOURS[type]}"><title>${esc(`${m.month} ${TYPE_WORDS[type]}: ${value}`)}</title></rect>`;
      base += value;
      return rect;
    }).join('');
    const total = m.standard + m.normal + m.emergency;
    return `${segments}<text x="${(x + barWidth / 2).toFixed(1)}" y="${(y(total) - 4).toFixed(1)}" text-anchor="middle" class="value">${total}</text><text x="${(x + barWidth / 2).toFixed(1)}" y="${height - bottom + 16}" text-anchor="middle">${esc(m.month)}</text>`;
  });
  const legend = CHANGE_TYPES.map(
    (type, i) =>
      `<rect x="${left + i * 110}" y="6" width="12" height="12" fill="${TYPE_COLOURS[type]}"/><text x="${left + i * 110 + 16}" y="16">${TYPE_WORDS[type]}</text>`,
  ).join('');
  const axis = ticks
    .map(
      (t) =>
        `<line x1="${left}" x2="${width - 10}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" class="grid"/><text x="${left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${Number.isInteger(t) ? t : t.toFixed(1)}</text>`,
    )
    .join('');
  return `<svg id="chart-changes-per-month" role="img" aria-labelledby="chart-months-title" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg"><title id="chart-months-title">Changes per month by type</title>${axis}${legend}${bars.join('')}</svg>`;
};

/** Horizontal bars: how the period's implementations ended, and what never got there. */
const outcomesChart = (report: ComplianceReport): string => {
  const v = report.volumes;
  const rows: [string, number, string][] = [
    ['Successful', v.outcomes.successful, '#54a24b'],
    ['Failed', v.outcomes.failed, '#e45756'],
    ['Rolled back', v.outcomes['rolled-back'], '#eeca3b'],
    ['Cancelled', v.cancelled, '#b279a2'],
    ['Rejected', v.rejected.total, '#ff9da6'],
  ];
  const width = 640;
  const rowHeight = 30;
  const left = 110;
  const height = rows.length * rowHeight + 10;
  const max = niceMax(Math.max(0, ...rows.map((r) => r[1])));
  const scale = (width - left - 60) / max;
  const bars = rows
    .map(([label, value, colour], i) => {
      const y = 5 + i * rowHeight;
      return `<text x="${left - 8}" y="${y + 19}" text-anchor="end">${label}</text><rect x="${left}" y="${y + 4}" width="${(value * scale).toFixed(1)}" height="${rowHeight - 8}" fill="${colour}"><title>${label}: ${value}</title></rect><text x="${(left + value * scale + 6).toFixed(1)}" y="${y + 19}" class="value">${value}</text>`;
    })
    .join('');
  return `<svg id="chart-outcomes" role="img" aria-labelledby="chart-outcomes-title" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg"><title id="chart-outcomes-title">Outcomes</title>${bars}</svg>`;
};

const table = (head: readonly string[], rows: readonly (readonly string[])[]) =>
  `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;

const leadTimeRow = (label: string, t: LeadTime) => [
  esc(label),
  String(t.count),
  hours(t.medianHours),
  hours(t.p90Hours),
];

const findingSection = (
  key: keyof ComplianceReport['findings'],
  head: readonly string[],
  rows: readonly (readonly string[])[],
) =>
  `<section class="finding" id="finding-${key}"><h3>${esc(FINDING_TITLES[key])} <span class="count ${rows.length === 0 ? 'zero' : 'some'}">${rows.length}</span></h3>${
    rows.length === 0 ? '<p class="none">None.</p>' : table(head, rows)
  }</section>`;

/** A self-contained, printable page: inline CSS and SVG, no script, nothing fetched. */
export const complianceReportHtml = (report: ComplianceReport): string => {
  const v = report.volumes;
  const f = report.findings;
  const change = (x: { changeId: string; title: string }) => `<b>${esc(x.changeId)}</b> ${esc(x.title)}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Change compliance report ${esc(report.period.label)}</title>
<style>
@page { size: A4; margin: 16mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 11pt; color: #222; max-width: 190mm; margin: 0 auto; }
h1 { font-size: 18pt; margin-bottom: 0; } h2 { font-size: 14pt; border-bottom: 1px solid #999; margin-top: 1.4em; }
h3 { font-size: 11.5pt; } .meta { color: #555; }
table { border-collapse: collapse; width: 100%; margin: 0.4em 0 1em; page-break-inside: auto; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; } th { background: #eee; }
tr { page-break-inside: avoid; } td.num, th.num { text-align: right; }
.kpis { display: flex; flex-wrap: wrap; gap: 8px; } .kpi { border: 1px solid #bbb; padding: 6px 10px; min-width: 28mm; }
.kpi b { display: block; font-size: 15pt; } .count { border-radius: 8px; padding: 0 6px; color: #fff; }
.count.zero { background: #2e7d32; } .count.some { background: #e45756; } .none { color: #555; }
svg text { font-family: inherit; font-size: 11px; fill: #222; } svg .value { font-weight: bold; } svg .grid { stroke: #ddd; }
.warning { border: 2px solid #e45756; padding: 6px 10px; }
.definitions { font-size: 9pt; color: #444; } .finding, figure { page-break-inside: avoid; }
</style>
</head>
<body>
<header>
<h1>Change compliance report: ${esc(report.period.label)}</h1>
<p class="meta">Period ${esc(report.period.from)} to ${esc(report.period.to)} (end exclusive) · facts as of ${esc(report.asOf)} · generated ${esc(report.generatedAt)} from read models at log position ${esc(report.readModelPosition)} · retrospectives due ${report.settings.retrospectiveDueBusinessDays} business days after implementation (RETROSPECTIVE_DUE_BUSINESS_DAYS), post-implementation reviews ${report.settings.postImplementationReviewDueBusinessDays} (POST_IMPLEMENTATION_REVIEW_DUE_BUSINESS_DAYS)</p>
${report.warnings.map((w) => `<p class="warning" role="alert"><b>Warning:</b> ${esc(w)}</p>`).join('\n')}
</header>
<h2>Volumes</h2>
<div class="kpis">
<div class="kpi" id="kpi-submitted">Submitted<b>${v.submitted.total}</b></div>
<div class="kpi" id="kpi-success-rate">Success rate<b>${percent(report.successRate)}</b></div>
<div class="kpi" id="kpi-emergency-share">Emergency share<b>${percent(report.emergencyShare)}</b></div>
<div class="kpi">Cancelled<b>${v.cancelled}</b></div>
<div class="kpi">Rejected<b>${v.rejected.total}</b>${v.rejected.inReview} in review, ${v.rejected.atApproval} at approval</div>
<div class="kpi">Rejected retrospectively<b>${v.retrospectivelyRejected}</b></div>
</div>
<figure><figcaption>Changes per month by type</figcaption>${monthsChart(report)}</figure>
${table(
  ['Type', 'Submitted'],
  CHANGE_TYPES.map((t) => [TYPE_WORDS[t], String(v.submitted[t])]),
)}
<figure><figcaption>Outcomes of implementations ended in the period, and changes that did not get there</figcaption>${outcomesChart(report)}</figure>
<h2>Lead times</h2>
${table(
  ['Stage', 'Changes', 'Median', '90th percentile'],
  [
    leadTimeRow('Submitted → approved', report.leadTimes.submittedToApproved),
    leadTimeRow('Approved → implementation start', report.leadTimes.approvedToImplementationStart),
    leadTimeRow(
      'Emergency declared → retrospective approval',
      report.leadTimes.emergencyDeclaredToRetrospectiveApproval,
    ),
  ],
)}
<h2>Control findings</h2>
${findingSection(
  'overdueRetrospectives',
  ['Change', 'Implemented', 'Due'],
  f.overdueRetrospectives.map((x) => [change(x), day(x.implementedAt), day(x.dueAt)]),
)}
${findingSection(
  'emergenciesStillAtWork',
  ['Change', 'Declared', 'At work past', 'Completed'],
  f.emergenciesStillAtWork.map((x) => [
    change(x),
    day(x.declaredAt),
    day(x.flaggedAfter),
    x.completedAt === null ? 'not yet' : day(x.completedAt),
  ]),
)}
${findingSection(
  'lateRetrospectives',
  ['Change', 'Due', 'Decided'],
  f.lateRetrospectives.map((x) => [change(x), day(x.dueAt), day(x.decidedAt)]),
)}
${findingSection(
  'retrospectivelyRejected',
  ['Change', 'Rejected', 'By'],
  f.retrospectivelyRejected.map((x) => [change(x), day(x.decidedAt), esc(x.by.name)]),
)}
${findingSection(
  'implementedOutsideWindow',
  ['Change', 'Window', 'Started', 'Ended', 'Why'],
  f.implementedOutsideWindow.map((x) => [
    change(x),
    `${day(x.plannedStart)} – ${day(x.plannedEnd)}`,
    day(x.startedAt),
    x.completedAt ? day(x.completedAt) : 'still running',
    esc(x.reasons.join(', ')),
  ]),
)}
${findingSection(
  'failedWithoutReview',
  ['Change', 'Outcome', 'Ended', 'Review due'],
  f.failedWithoutReview.map((x) => [change(x), esc(x.outcome), day(x.completedAt), day(x.reviewDueAt)]),
)}
${findingSection(
  'succeededWithoutReview',
  ['Change', 'Ended', 'Review due'],
  f.succeededWithoutReview.map((x) => [change(x), day(x.completedAt), day(x.reviewDueAt)]),
)}
${findingSection(
  'unnotifiedEmergencies',
  ['Change', 'Started', 'Ended'],
  f.unnotifiedEmergencies.map((x) => [change(x), day(x.startedAt), day(x.completedAt)]),
)}
${findingSection(
  'undocumentedImplementations',
  ['Change', 'Outcome', 'Ended'],
  f.undocumentedImplementations.map((x) => [change(x), esc(x.outcome), day(x.completedAt)]),
)}
${findingSection(
  'failuresWithoutIssues',
  ['Change', 'Outcome', 'Ended', 'Closed'],
  f.failuresWithoutIssues.map((x) => [change(x), esc(x.outcome), day(x.completedAt), day(x.closedAt)]),
)}
${findingSection(
  'documentationNotUpdated',
  ['Change', 'Reviewed', 'By'],
  f.documentationNotUpdated.map((x) => [change(x), day(x.reviewedAt), esc(x.by.name)]),
)}
${findingSection(
  'segregationOfDutiesExceptions',
  ['Change', 'Rule', 'Event', 'By', 'At'],
  f.segregationOfDutiesExceptions.map((x) => [
    change(x),
    esc(x.rule),
    `${esc(x.eventType)} (revision ${esc(x.revision)})`,
    `${esc(x.actor.name)} (${esc(x.actor.id)})`,
    day(x.at),
  ]),
)}
<p class="checked">Checked: ${report.segregationOfDutiesChecks.controlEvents} control events of ${report.segregationOfDutiesChecks.changes} changes in the period.</p>
${findingSection(
  'staleInReview',
  ['Change', 'In review since', 'Until', 'Days'],
  f.staleInReview.map((x) => [
    change(x),
    day(x.since),
    x.until ? day(x.until) : 'still waiting',
    x.days.toFixed(1),
  ]),
)}
<h2>Lessons learned and improvements</h2>
${
  report.lessonsLearned.length === 0
    ? '<p class="none">No post-implementation review was recorded in the period.</p>'
    : table(
        ['Change', 'Reviewed', 'Lessons learned', 'Improvements'],
        report.lessonsLearned.map((l) => [
          change(l),
          `${day(l.at)}<br>${esc(l.by.name)}`,
          esc(l.lessonsLearned) + (l.issues ? `<br><i>Issues: ${esc(l.issues)}</i>` : ''),
          l.improvements.length === 0
            ? '–'
            : `<ul>${l.improvements.map((i) => `<li>${esc(i)}</li>`).join('')}</ul>`,
        ]),
      )
}
<h2>How the figures are counted</h2>
<dl class="definitions">${Object.entries(report.definitions)
    .map(([k, d]) => `<dt>${esc(k)}</dt><dd>${esc(d)}</dd>`)
    .join('')}</dl>
</body>
</html>
`;
};
