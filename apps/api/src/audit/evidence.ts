import type { ChangeView } from '@changeledger/domain';
import type { AuditEvent, ChainReport } from '@changeledger/event-store';
import {
  markdownBlock,
  markdownCell,
  markdownInline as md,
  markdownListItem,
} from '@changeledger/read-models';

const word = (value: string | null | undefined) =>
  value ? value.charAt(0).toUpperCase() + value.slice(1) : '—';
const day = (iso: string | null | undefined) => (iso ? iso.slice(0, 10) : '—');
/** A paragraph of the requester's text, escaped: it can never add a section of its own. */
const text = (value: string | null | undefined) =>
  value && value.trim() ? markdownBlock(value) : '_(not recorded)_';

/**
 * A person as the record knows them: display name and user id. The name is the token's free
 * text (two people may share one, or edit theirs); the id is what segregation of duties compares.
 */
const person = (who: { readonly id: string; readonly name: string }, what?: string) =>
  `${md(who.name)} (id ${md(who.id)}${what ? `; ${what}` : ''})`;

const yesNo = (value: boolean) => (value ? 'yes' : 'no');
const when = (iso: string | null | undefined) => (iso ? md(iso) : '—');

/**
 * Who approved, in the words an auditor expects, whatever the change type: for an emergency,
 * management's retrospective approval; a retrospective rejection approves nothing (as the view
 * says: `approvedBy` null), and is named as what it is.
 */
const approvedBy = (v: ChangeView) => {
  if (v.approval?.level === 'standard-template')
    return `Pre-approved by standard template ${md(v.standardTemplate?.id)}`.trim();
  if (v.approval?.by) return person(v.approval.by, v.approval.level);
  const decision = v.retrospectiveDecision;
  if (decision?.decision === 'approve') return person(decision.by, 'retrospective approval, management');
  if (decision) return `— (retrospectively rejected by ${person(decision.by)}: see below)`;
  return '—';
};

const CHECKLIST_WORDS: Record<ChangeView['checklist'][number]['item'], string> = {
  'backups-verified': 'Backups verified',
  'rollback-plan-prepared': 'Rollback plan prepared',
  'stakeholders-notified': 'Stakeholders notified',
  'maintenance-window-scheduled': 'Maintenance window scheduled',
};

/**
 * The process's pre-implementation preparation: each item ticked (by whom, when, with its note),
 * not required (the maintenance window when the schedule needs none), or still open.
 */
const checklist = (v: ChangeView): string[] => {
  const ticked = v.checklist.filter((entry) => entry.done || entry.required);
  // an emergency is implemented at once: it has no checklist to tick
  if (v.type === 'emergency' && ticked.length === 0) {
    return ['- **Pre-Implementation Checklist:** — (an emergency is implemented at once)'];
  }
  return [
    '- **Pre-Implementation Checklist:**',
    ...v.checklist.map((entry) => {
      const label = CHECKLIST_WORDS[entry.item];
      if (!entry.done) return `  - ${label}: ${entry.required ? 'not done' : 'not required'}`;
      const note = entry.note ? ` — ${md(entry.note)}` : '';
      return `  - ${label}: yes (${entry.by ? person(entry.by) : '—'}, ${when(entry.at)})${note}`;
    }),
  ];
};

/** What happened after the approval: the record an auditor checks the plan against. */
const afterApproval = (v: ChangeView): string[] => {
  const lines: string[] = ['## Implementation and Review'];
  const schedule = v.schedule;
  lines.push(
    `- **Scheduled:** ${schedule ? `${md(schedule.plannedStart)} – ${md(schedule.plannedEnd)} (maintenance window: ${yesNo(schedule.maintenanceWindow)}; by ${person(schedule.by)})` : '—'}`,
    ...checklist(v),
    `- **Implemented By:** ${v.implementedBy ? person(v.implementedBy) : '—'}`,
    `- **Started:** ${when(v.timestamps.implementationStartedAt)}`,
  );
  // the process's "document steps taken": each step as recorded, in order, by whom and when
  if (v.steps.length === 0) lines.push('- **Steps Taken:** none recorded');
  else {
    lines.push(`- **Steps Taken:** ${v.steps.length}`);
    for (const step of v.steps) {
      lines.push(
        `  ${step.sequence}. ${markdownListItem(step.description)} (${person(step.by)}, ${md(step.at)})`,
      );
    }
  }
  if (v.issues.length === 0) lines.push('- **Issues:** none recorded');
  else {
    lines.push('- **Issues:**');
    for (const issue of v.issues) {
      lines.push(
        `  - ${md(issue.severity)}: ${md(issue.description)} (${person(issue.by)}, ${md(issue.at)})`,
      );
    }
  }
  const check = v.verification;
  lines.push(
    `- **Verification:** ${
      check
        ? `${check.passed ? 'passed' : 'FAILED'} (functionality tested: ${yesNo(check.functionalityTested)}, ` +
          `system health verified: ${yesNo(check.systemHealthVerified)}, logs checked: ${yesNo(check.logsChecked)}; ` +
          `${person(check.by)}, ${md(check.at)})`
        : '—'
    }`,
    `- **Outcome:** ${v.outcome ? word(md(v.outcome)) : '—'}${v.outcomeNotes ? ` — ${md(v.outcomeNotes)}` : ''}`,
    `- **Completed:** ${when(v.timestamps.implementedAt)}`,
  );
  const review = v.postImplementationReview;
  if (!review) lines.push('- **Post-Implementation Review:** —');
  else {
    lines.push(
      `- **Post-Implementation Review:** ${person(review.by)}, ${md(review.at)}`,
      `  - Documentation updated: ${yesNo(review.documentationUpdated)}`,
      `  - Lessons learned: ${md(review.lessonsLearned) || '—'}`,
      ...(review.improvements.length
        ? review.improvements.map((improvement) => `  - Improvement: ${md(improvement)}`)
        : ['  - Improvements: none']),
    );
  }
  const decision = v.retrospectiveDecision;
  if (v.type === 'emergency') {
    lines.push(
      `- **Retrospective Decision:** ${
        decision
          ? `${decision.decision === 'approve' ? 'approved' : 'REJECTED'} by ${person(decision.by, 'management')}, ${md(decision.at)}: ${md(decision.comment)}`
          : '— (outstanding)'
      }`,
    );
  }
  if (v.rejection) {
    const { stage, kind, reason, by, at } = v.rejection;
    lines.push(
      `- **Rejected:** at ${md(stage)}${kind ? ` (${md(kind)} review)` : ''} by ${person(by)}, ${md(at)}: ${md(reason)}`,
    );
  }
  if (v.cancellation) {
    const { reason, by, at, statusBefore } = v.cancellation;
    lines.push(`- **Cancelled:** while ${md(statusBefore)}, by ${person(by)}, ${md(at)}: ${md(reason)}`);
  }
  lines.push(`- **Closed:** ${when(v.timestamps.closedAt)}`);
  return lines;
};

/**
 * The seed's "Change Request Template" filled in from the change, then its full history and the
 * check of its stream's hash chain: what an auditor attaches to a sample.
 */
export const evidenceMarkdown = (
  v: ChangeView,
  history: readonly AuditEvent[],
  chain: ChainReport,
  generatedAt: string,
): string => {
  const window = v.timeline?.maintenanceWindow;
  const lines = [
    '# Change Request',
    '',
    `_${md(v.id)} — evidence generated ${generatedAt} from ${history.length} events._`,
    '',
    '## Change Information',
    `- **Title:** ${md(v.title) || '—'}`,
    `- **Requestor:** ${v.requestedBy ? person(v.requestedBy) : '—'}`,
    `- **Date:** ${day(v.timestamps.submittedAt)}`,
    `- **Change Type:** ${word(md(v.type))}`,
    `- **Priority:** ${word(md(v.priority))}`,
    `- **Status:** ${md(v.status)}`,
    '',
    ...(v.emergency
      ? [
          '## Emergency',
          `- **Category:** ${word(md(v.emergency.category))}`,
          `- **Justification:** ${md(v.emergency.justification) || '—'}`,
          '',
        ]
      : []),
    '## Change Description',
    text(v.description),
    '',
    '## Reason for Change',
    text(v.reason),
    '',
    '## Systems Affected',
    ...(v.systemsAffected ?? []).map((s) => `- ${markdownListItem(s)}`),
    '',
    '## Implementation Plan',
    ...(Array.isArray(v.implementationPlan) && v.implementationPlan.length
      ? v.implementationPlan.map((step, i) => `${i + 1}. ${markdownListItem(step)}`)
      : [text(undefined)]),
    '',
    '## Rollback Plan',
    text(v.rollbackPlan),
    '',
    '## Risk Assessment',
    `- **Risk Level:** ${word(v.risk?.level)}`,
    `- **Potential Impact:** ${v.risk ? md(v.risk.potentialImpact) : '—'}`,
    `- **Mitigation:** ${v.risk ? md(v.risk.mitigation) : '—'}`,
    '',
    '## Testing Plan',
    text(v.testingPlan),
    '',
    '## Timeline',
    `- **Proposed Date:** ${day(v.timeline?.proposedStart)}`,
    `- **Estimated Duration:** ${v.timeline ? `${v.timeline.estimatedDurationMinutes} minutes` : '—'}`,
    `- **Maintenance Window:** ${window ? `${md(window.start)} – ${md(window.end)}` : 'not needed'}`,
    '',
    '## Approval',
    `- **Reviewed By:** ${v.reviews.length ? v.reviews.map((r) => person(r.by, `${r.kind}: ${r.verdict}`)).join(', ') : '—'}`,
    `- **Approved By:** ${approvedBy(v)}`,
    `- **Date:** ${day(v.timestamps.approvedAt)}`,
    '',
    ...afterApproval(v),
    '',
    '## History',
    '',
    '| Position | Revision | Time | Event | Actor | Hash |',
    '|----------|----------|------|-------|-------|------|',
    ...history.map(
      (e) =>
        `| ${e.position} | ${e.revision} | ${markdownCell(e.occurredAt)} | ${markdownCell(e.type)} | ${markdownCell(`${e.actor.name} (id ${e.actor.id}; ${e.actor.roles.join(', ')})`)} | ${markdownCell((e.hash ?? '').slice(0, 16))}… |`,
    ),
    '',
    '## Hash chain',
    chain.valid
      ? `Intact: ${chain.checkedEvents} events of stream \`changeRequest-${v.id}\` verified (SHA-256, each event chained to the one before).`
      : `**BROKEN** at revision ${chain.firstInvalid?.revision} (position ${chain.firstInvalid?.position}): ${md(chain.firstInvalid?.reason)}.`,
    '',
  ];
  return lines.join('\n');
};
