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

/** Who approved, in the words an auditor expects, whatever the change type. */
const approvedBy = (v: ChangeView) => {
  if (v.approval?.level === 'standard-template')
    return `Pre-approved by standard template ${md(v.standardTemplate?.id)}`.trim();
  if (v.approval?.by) return person(v.approval.by, v.approval.level);
  if (v.retrospectiveDecision) {
    return person(
      v.retrospectiveDecision.by,
      `retrospective ${v.retrospectiveDecision.decision}, management`,
    );
  }
  return '—';
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
    `_${v.id} — evidence generated ${generatedAt} from ${history.length} events._`,
    '',
    '## Change Information',
    `- **Requestor:** ${v.requestedBy ? person(v.requestedBy) : '—'}`,
    `- **Date:** ${day(v.timestamps.submittedAt)}`,
    `- **Change Type:** ${word(v.type)}`,
    `- **Priority:** ${word(v.priority)}`,
    `- **Status:** ${v.status}`,
    '',
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
    `- **Date:** ${day(v.approval?.at ?? v.retrospectiveDecision?.at)}`,
    '',
    '## History',
    '',
    '| Position | Revision | Time | Event | Actor | Hash |',
    '|----------|----------|------|-------|-------|------|',
    ...history.map(
      (e) =>
        `| ${e.position} | ${e.revision} | ${e.occurredAt} | ${e.type} | ${markdownCell(`${e.actor.name} (id ${e.actor.id}; ${e.actor.roles.join(', ')})`)} | ${(e.hash ?? '').slice(0, 16)}… |`,
    ),
    '',
    '## Hash chain',
    chain.valid
      ? `Intact: ${chain.checkedEvents} events of stream \`changeRequest-${v.id}\` verified (SHA-256, each event chained to the one before).`
      : `**BROKEN** at revision ${chain.firstInvalid?.revision} (position ${chain.firstInvalid?.position}): ${chain.firstInvalid?.reason}.`,
    '',
  ];
  return lines.join('\n');
};
