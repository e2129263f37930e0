import { type Actor, type Role, actorRef, hasAnyRole } from '../shared/actor';
import { canonicalJson } from '../shared/canonical-json';
import { CONTROL_CHARACTER, hasVisibleText, stepKey, systemKey } from '../shared/text';
import type { Decider, DecisionContext } from '../shared/decider';
import {
  forbidden,
  invalidState,
  notFound,
  ruleViolation,
  segregationOfDuties,
  validationFailed,
} from '../shared/domain-error';
import { namesSystems, type StandardTemplateState } from '../standard-template/standard-template.state';
import type {
  AmendChange,
  ChangeRequestCommand,
  ChangeRequestCommandType,
  RecordReview,
  SubmitChange,
} from './change-request.commands';
import type { ChangeRequestEvent } from './change-request.events';
import {
  type ChangeRequestState,
  evolveChangeRequest,
  initialChangeRequestState,
} from './change-request.state';
import {
  type ApprovalLevel,
  type ChangeRequestFields,
  type ChangeStatus,
  type ChangeType,
  CHECKLIST_ITEMS,
  type ChecklistItem,
  BASE_FIELDS,
  LATER_FIELDS,
  REVIEW_CRITERIA,
  REVIEW_KINDS,
  type RiskLevel,
} from './change-request.types';

export interface ChangeRequestContext extends DecisionContext {
  /** The template a standard submission names, loaded by the caller (undefined if none exists). */
  readonly template?: StandardTemplateState;
}

type Actionable = Exclude<ChangeRequestCommandType, 'SubmitChange'>;

/**
 * Who may send each command, and in which statuses. This table is the contract's
 * "Commands" table; `decide` applies it before the command-specific rules.
 */
interface CommandPolicy {
  readonly roles: readonly Role[] | 'original-requester';
  /** Others than `roles` who may also act: the original requester (for cancel). */
  readonly alsoOriginalRequester?: boolean;
  readonly allowedIn: (state: ChangeRequestState) => readonly ChangeStatus[];
}

const PRE_IMPLEMENTATION: readonly ChangeStatus[] = [
  'in-review',
  'changes-requested',
  'awaiting-approval',
  'approved',
  'scheduled',
];
const always =
  (...statuses: ChangeStatus[]) =>
  (): readonly ChangeStatus[] =>
    statuses;

export const COMMAND_POLICIES: Record<Actionable, CommandPolicy> = {
  AmendChange: {
    roles: 'original-requester',
    allowedIn: (s) =>
      s.type === 'emergency'
        ? ['in-progress', 'implemented']
        : ['in-review', 'changes-requested', 'awaiting-approval'],
  },
  RecordReview: {
    roles: ['technical-reviewer', 'business-reviewer', 'security-reviewer'],
    allowedIn: always('in-review'),
  },
  ApproveChange: { roles: ['infrastructure-lead', 'management'], allowedIn: always('awaiting-approval') },
  RejectChange: { roles: ['infrastructure-lead', 'management'], allowedIn: always('awaiting-approval') },
  ScheduleChange: {
    roles: ['implementer', 'infrastructure-lead'],
    allowedIn: always('approved', 'scheduled'),
  },
  CompleteChecklistItem: {
    roles: ['implementer'],
    allowedIn: always('approved', 'scheduled', 'in-progress'),
  },
  StartImplementation: { roles: ['implementer'], allowedIn: always('scheduled') },
  RecordImplementationStep: { roles: ['implementer'], allowedIn: always('in-progress') },
  RecordImplementationIssue: { roles: ['implementer'], allowedIn: always('in-progress', 'implemented') },
  RecordVerification: { roles: ['implementer'], allowedIn: always('in-progress') },
  CompleteImplementation: { roles: ['implementer'], allowedIn: always('in-progress') },
  RecordPostImplementationReview: {
    roles: ['implementer', 'infrastructure-lead', 'management'],
    allowedIn: always('implemented'),
  },
  RecordRetrospectiveDecision: {
    roles: ['management'],
    allowedIn: (s) => (s.type === 'emergency' ? ['implemented'] : []),
  },
  CloseChange: {
    roles: ['implementer', 'infrastructure-lead', 'management'],
    allowedIn: always('implemented'),
  },
  CancelChange: {
    roles: ['infrastructure-lead', 'management'],
    alsoOriginalRequester: true,
    allowedIn: always(...PRE_IMPLEMENTATION),
  },
};

/** The rule that sets an approval level (named in ReviewsCompleted and the decision's event). */
const approvalRuleFor = (level: ApprovalLevel) =>
  level === 'management' ? 'high-risk-needs-management' : 'normal-change-needs-infrastructure-lead';

export const requiredApprovalFor = (risk: RiskLevel): ApprovalLevel =>
  risk === 'high' ? 'management' : 'infrastructure-lead';

export const requiredChecklistItems = (state: ChangeRequestState): ChecklistItem[] =>
  CHECKLIST_ITEMS.filter(
    (item) => item !== 'maintenance-window-scheduled' || state.schedule?.maintenanceWindow === true,
  );

/**
 * A field not filled in: absent, null, text of only white space, an empty list, or a list or
 * object with such a part (an optional member left out is fine). Blanks must not pass for the
 * "complete change request" an emergency needs before its retrospective approval.
 */
const isBlank = (value: unknown): boolean => {
  if (value === undefined || value === null) return true;
  if (typeof value === 'string') return !hasVisibleText(value);
  if (Array.isArray(value)) return value.length === 0 || value.some(isBlank);
  if (typeof value === 'object') {
    return Object.values(value).some((member) => member !== undefined && isBlank(member));
  }
  return false;
};

/** What an emergency change still lacks to be a complete change request. */
export const missingRequestFields = (request: ChangeRequestFields): string[] =>
  LATER_FIELDS.filter((field) => isBlank(request[field]));

/**
 * The approver of a change does not implement it: not its start (the contract's rule), nor any
 * of the implementation work (IMPLEMENTATION_WORK_EVENT_TYPES), which would otherwise be theirs
 * once someone else pressed start. An emergency's approver is management's retrospective one (as
 * in its view): who worked on it does not decide that (RecordRetrospectiveDecision), and who
 * approved it does not record its issues afterwards (the only work left once it is implemented).
 */
const assertNotApprover = (state: ChangeRequestState, actor: Actor, what: string) => {
  const approver =
    state.approval?.by ??
    (state.retrospectiveDecision?.decision === 'approve' ? state.retrospectiveDecision.by : undefined);
  if (approver && approver.id === actor.id) {
    throw segregationOfDuties(`the approver of a change does not ${what}`, 'approver-is-not-implementer');
  }
};

const isOriginalRequester = (state: ChangeRequestState, actor: Actor) => state.requestedBy?.id === actor.id;

/**
 * The systems a template's scope does not cover. A scope entry names a system (compared as
 * `systemKey`s: case, surrounding spaces and zero-width characters do not matter) or, with `*`, a
 * pattern of names: `pve-node-*`. An entry that does not name systems (`*`, `*-*`: see
 * `namesSystems`) covers nothing.
 */
export const outsideScope = (systems: readonly string[], scope: readonly string[]): string[] => {
  const patterns = scope.filter(namesSystems).map(systemKey);
  return systems.filter((system) => {
    const name = systemKey(system);
    return !patterns.some((pattern) => globMatches(pattern, name));
  });
};

/** A text cut to 200 characters, to quote in an error. */
const excerpt = (text: string) => (text.length > 200 ? `${text.slice(0, 199)}…` : text);

/**
 * The step (1-based) at which a plan departs from a procedure (`stepKey`s compared), or undefined
 * when it is the procedure: a step changed, or one left out or added (the step after the shorter).
 */
export const departureFromProcedure = (
  plan: readonly string[],
  procedure: readonly string[],
): number | undefined => {
  const steps = Math.max(plan.length, procedure.length);
  for (let i = 0; i < steps; i++) {
    if (plan[i] === undefined || procedure[i] === undefined || stepKey(plan[i]) !== stepKey(procedure[i])) {
      return i + 1;
    }
  }
  return undefined;
};

/**
 * What `*` does not stand for: a system "name" that lists several (`pve-node-03, prod-db-01`) or
 * describes more (`pve-node-1 and the database cluster`) must not pass as one name in scope.
 */
const NOT_IN_A_STAR = /[\s,;]/;

/**
 * `*` matches any run of characters but white space, `,` and `;` (NOT_IN_A_STAR), everything
 * else itself. The literal parts are placed leftmost, in order, between the fixed start and end:
 * enough for `*` alone, and linear-time searches instead of a regular expression's `.*`s, which
 * backtrack exponentially on a near miss. (A run a `*` may not take only grows when a part is
 * placed further right, so leftmost misses no match.)
 */
export const globMatches = (pattern: string, text: string): boolean => {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === text;
  const first = parts[0];
  const last = parts[parts.length - 1];
  if (text.length < first.length + last.length || !text.startsWith(first) || !text.endsWith(last)) {
    return false;
  }
  const end = text.length - last.length;
  let at = first.length;
  for (const part of parts.slice(1, -1)) {
    if (part === '') continue;
    const found = text.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    if (NOT_IN_A_STAR.test(text.slice(at, found))) return false;
    at = found + part.length;
  }
  return !NOT_IN_A_STAR.test(text.slice(at, end));
};

/** The roles that may submit a change of this type. */
const submitterRoles = (type: ChangeType | undefined): Role[] =>
  type === 'emergency' ? ['requester', 'implementer'] : ['requester'];

/**
 * May act as the original requester (amend, cancel): the same person, still holding a role that
 * may submit such a change. One who has since become an auditor only changes nothing.
 */
const actsAsOriginalRequester = (state: ChangeRequestState, actor: Actor) =>
  isOriginalRequester(state, actor) && hasAnyRole(actor, submitterRoles(state.type));

const describeRoles = (roles: readonly string[]) => roles.join(' or ');

const checkTimes = (start: string, end: string, what: string, endField: string) => {
  if (!(Date.parse(end) > Date.parse(start))) {
    throw validationFailed(`${what}: the end must come after the start`, 'time-range', [
      { field: endField, message: 'must come after the start' },
    ]);
  }
};

/** The same message for each of these fields. */
const fieldErrors = (fields: readonly string[], message: string) =>
  fields.map((field) => ({ field, message }));

const emergencyDetailsOnlyForEmergencies = () =>
  validationFailed('only emergency changes carry emergency details', 'emergency-details', [
    { field: 'emergency', message: 'only emergency changes carry emergency details' },
  ]);

const validateRequest = (type: ChangeType, request: ChangeRequestFields) => {
  // The API's DTOs check this too; the rule lives here, so that no other door lets it through.
  const missingBase = BASE_FIELDS.filter((field) => isBlank(request[field]));
  if (missingBase.length > 0) {
    throw validationFailed(
      `a change request needs ${missingBase.join(', ')}`,
      'complete-request',
      fieldErrors(missingBase, 'is required'),
    );
  }
  if (type !== 'emergency') {
    const missing = missingRequestFields(request);
    if (missing.length > 0) {
      throw validationFailed(
        `a ${type} change needs ${missing.join(', ')}`,
        'complete-request',
        fieldErrors(missing, `is required for a ${type} change`),
      );
    }
    if (request.emergency !== undefined) throw emergencyDetailsOnlyForEmergencies();
  } else if (request.emergency === undefined) {
    throw validationFailed(
      'an emergency change needs emergency details (category, justification)',
      'emergency-details',
      [{ field: 'emergency', message: 'is required for an emergency change' }],
    );
  }
  const window = request.timeline?.maintenanceWindow;
  if (window) {
    checkTimes(window.start, window.end, 'timeline.maintenanceWindow', 'timeline.maintenanceWindow.end');
  }
};

const decideSubmit = (command: SubmitChange, state: ChangeRequestState, ctx: ChangeRequestContext) => {
  const { actor, now } = ctx;
  const allowed = submitterRoles(command.changeType);
  if (!hasAnyRole(actor, allowed)) {
    throw forbidden(`submitting a ${command.changeType} change needs the role ${describeRoles(allowed)}`);
  }
  if (state.exists) throw invalidState(`change ${state.id} already exists`);
  validateRequest(command.changeType, command.fields);
  const by = actorRef(actor);
  if (command.changeType === 'standard') {
    const templateId = command.standardTemplateId;
    if (!templateId) {
      throw validationFailed('a standard change must name standardTemplateId', 'standard-template', [
        { field: 'standardTemplateId', message: 'is required for a standard change' },
      ]);
    }
    const template = ctx.template;
    if (!template?.exists || template.id !== templateId) {
      throw ruleViolation(`standard template ${templateId} does not exist`, 'standard-template-active');
    }
    if (!template.active) {
      throw ruleViolation(`standard template ${templateId} is retired`, 'standard-template-active');
    }
    if (command.fields.risk?.level !== 'low') {
      throw ruleViolation(
        `a standard change must be low risk (this one is ${command.fields.risk?.level ?? 'unassessed'})`,
        'standard-change-low-risk',
      );
    }
    // The template's pre-approval covers the systems it names, not others: those need review.
    const outside = outsideScope(command.fields.systemsAffected ?? [], template.systemsScope);
    if (outside.length > 0) {
      throw ruleViolation(
        `standard template ${templateId} covers ${template.systemsScope.join(', ')}; not ${outside.join(', ')} (submit a normal change for them)`,
        'standard-change-within-template-scope',
      );
    }
    // A step no plan may repeat (blank, or with control characters: a template stored before
    // such text was refused) would make every submission a mismatch the user cannot mend.
    const unusable = template.procedure.findIndex(
      (text) => !hasVisibleText(text) || CONTROL_CHARACTER.test(text),
    );
    if (unusable >= 0) {
      throw ruleViolation(
        `step ${unusable + 1} of standard template ${templateId}'s procedure is blank or holds control characters, which no plan may repeat (it was stored before such text was refused): retire the template and create it again`,
        'standard-template-procedure-usable',
      );
    }
    // ... nor other work on its systems: the pre-approved procedure is the plan ("follow standard
    // procedures"); a plan of one's own is a normal change, reviewed and approved.
    const plan = command.fields.implementationPlan ?? [];
    const step = departureFromProcedure(plan, template.procedure);
    if (step !== undefined) {
      const expected = template.procedure[step - 1];
      throw ruleViolation(
        `a standard change's implementation plan is its template's procedure (GET /standard-templates lists it; submit a normal change for other work): ${
          expected === undefined
            ? `the plan has ${plan.length} steps, the procedure of ${templateId} ${template.procedure.length}`
            : `step ${step} of ${templateId}'s procedure is ${JSON.stringify(excerpt(expected))}${plan[step - 1] === undefined ? `, and the plan stops at step ${plan.length}` : ''}`
        }`,
        'standard-change-follows-template-procedure',
      );
    }
    return [
      {
        type: 'ChangeSubmitted',
        data: {
          changeId: command.changeId,
          changeType: 'standard',
          // the template's steps as written, not the copy they were compared with (white space
          // and format characters aside): a line break the comparison passed is a command in a shell
          request: { ...command.fields, implementationPlan: [...template.procedure] },
          standardTemplate: { id: template.id, name: template.name, version: template.version },
          by,
          at: now,
        },
      },
      {
        type: 'ChangePreApproved',
        data: { templateId: template.id, rule: 'standard-change-template', by, at: now },
      },
    ] satisfies ChangeRequestEvent[];
  }
  if (command.standardTemplateId !== undefined) {
    throw validationFailed('only standard changes name a standard template', 'standard-template', [
      { field: 'standardTemplateId', message: 'only standard changes name a standard template' },
    ]);
  }
  const submitted: ChangeRequestEvent = {
    type: 'ChangeSubmitted',
    data: {
      changeId: command.changeId,
      changeType: command.changeType,
      request: command.fields,
      by,
      at: now,
    },
  };
  if (command.changeType === 'emergency') {
    // The process says "implement immediately": the declaration starts the implementation.
    return [
      submitted,
      {
        type: 'ImplementationStarted',
        data: { emergency: true, by, at: now, byImplementer: actor.roles.includes('implementer') },
      },
    ] satisfies ChangeRequestEvent[];
  }
  return [submitted];
};

const decideAmend = (command: AmendChange, state: ChangeRequestState, ctx: ChangeRequestContext) => {
  if ('emergency' in command.fields && command.fields.emergency !== undefined && state.type !== 'emergency') {
    throw emergencyDetailsOnlyForEmergencies();
  }
  const changes: Record<string, unknown> = {};
  const previous: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(command.fields)) {
    if (value === undefined) continue;
    const before = (state.request as unknown as Record<string, unknown>)[key];
    if (canonicalJson(before) !== canonicalJson(value)) {
      changes[key] = value;
      previous[key] = before;
    }
  }
  if (Object.keys(changes).length === 0) {
    throw validationFailed('the amendment changes nothing', 'amendment-changes-something');
  }
  const amended = { ...state.request, ...changes } as ChangeRequestFields;
  validateRequest(state.type, amended);
  const voidsReviews = state.type === 'normal';
  const voidedReviews = voidsReviews ? REVIEW_KINDS.filter((k) => state.reviews[k] !== undefined) : [];
  // An approval judged the request as it was: it would otherwise stand for a record it never
  // saw. Void, management decides again (as a normal change's amendment voids its reviews). A
  // rejection stands: a rejected change is final, and no amendment takes a rejection away.
  const voidedRetrospectiveDecision =
    state.retrospectiveDecision?.decision === 'approve' ? state.retrospectiveDecision : undefined;
  return [
    {
      type: 'ChangeAmended',
      data: {
        changes: changes as Partial<ChangeRequestFields>,
        previous: previous as Partial<ChangeRequestFields>,
        voidedReviews,
        ...(voidedRetrospectiveDecision ? { voidedRetrospectiveDecision } : {}),
        statusBefore: state.status,
        statusAfter: voidsReviews ? 'in-review' : state.status,
        by: actorRef(ctx.actor),
        at: ctx.now,
      },
    },
  ] satisfies ChangeRequestEvent[];
};

const decideReview = (command: RecordReview, state: ChangeRequestState, ctx: ChangeRequestContext) => {
  const expected = REVIEW_CRITERIA[command.kind];
  const given = Object.keys(command.criteria);
  const missing = expected.filter(
    (k) => typeof command.criteria[k] !== 'string' || !hasVisibleText(command.criteria[k]),
  );
  const unknown = given.filter((k) => !expected.includes(k));
  if (missing.length > 0 || unknown.length > 0) {
    throw validationFailed(
      [
        missing.length > 0 ? `criteria missing: ${missing.join(', ')}` : '',
        unknown.length > 0 ? `criteria not part of a ${command.kind} review: ${unknown.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; '),
      'review-criteria',
      [
        ...fieldErrors(
          missing.map((k) => `criteria.${k}`),
          'is required',
        ),
        ...fieldErrors(
          unknown.map((k) => `criteria.${k}`),
          `not part of a ${command.kind} review`,
        ),
      ],
    );
  }
  // One review of each kind stands. While the change is in review, a reviewer of the kind who
  // finds a problem after it was approved may still reject or request changes: the new review
  // overrules the approval (named in the event), and the change leaves review.
  const earlier = state.reviews[command.kind];
  if (earlier !== undefined && command.verdict === 'approve') {
    throw ruleViolation(
      `the ${command.kind} review is already recorded (${earlier.verdict}); a later one of this kind may only reject or request changes`,
      'one-review-per-kind',
    );
  }
  const by = actorRef(ctx.actor);
  const at = ctx.now;
  const recorded: ChangeRequestEvent = {
    type: 'ReviewRecorded',
    data: {
      kind: command.kind,
      verdict: command.verdict,
      notes: command.notes,
      criteria: command.criteria,
      ...(earlier ? { supersedes: { verdict: earlier.verdict, by: earlier.by, at: earlier.at } } : {}),
      by,
      at,
    },
  };
  if (command.verdict === 'reject') {
    return [
      recorded,
      {
        type: 'ChangeRejected',
        data: { stage: 'review', kind: command.kind, reason: command.notes, by, at },
      },
    ] satisfies ChangeRequestEvent[];
  }
  if (command.verdict === 'request-changes') {
    return [
      recorded,
      { type: 'ChangesRequested', data: { kind: command.kind, notes: command.notes, by, at } },
    ] satisfies ChangeRequestEvent[];
  }
  const approvedKinds = REVIEW_KINDS.filter(
    (k) => k === command.kind || state.reviews[k]?.verdict === 'approve',
  );
  if (approvedKinds.length < REVIEW_KINDS.length) return [recorded];
  const riskLevel = state.request.risk?.level ?? 'high';
  const requiredApproval = requiredApprovalFor(riskLevel);
  return [
    recorded,
    {
      type: 'ReviewsCompleted',
      data: {
        riskLevel,
        requiredApproval,
        rule: approvalRuleFor(requiredApproval),
        by,
        at,
      },
    },
  ] satisfies ChangeRequestEvent[];
};

const checkPolicy = (
  command: Exclude<ChangeRequestCommand, SubmitChange>,
  state: ChangeRequestState,
  actor: Actor,
) => {
  const policy = COMMAND_POLICIES[command.type];
  if (policy.roles === 'original-requester') {
    if (!actsAsOriginalRequester(state, actor)) {
      throw forbidden(
        `only the original requester (${state.requestedBy?.name ?? 'unknown'}), holding the role ${describeRoles(submitterRoles(state.type))}, may do this`,
      );
    }
  } else if (command.type !== 'RecordReview') {
    const allowed =
      hasAnyRole(actor, policy.roles) ||
      (policy.alsoOriginalRequester === true && actsAsOriginalRequester(state, actor));
    if (!allowed) {
      const who = describeRoles([
        ...(policy.alsoOriginalRequester ? ['the original requester'] : []),
        ...policy.roles,
      ]);
      throw forbidden(`${command.type} needs ${who}`);
    }
  } else {
    // The kind's own role, before any segregation-of-duties check: a requester who is a
    // technical reviewer lacks the role for a security review (403 FORBIDDEN, not SoD).
    const role = `${command.kind}-reviewer` as Role;
    if (!actor.roles.includes(role)) throw forbidden(`a ${command.kind} review needs the role ${role}`);
  }
  const allowedIn = policy.allowedIn(state);
  if (!allowedIn.includes(state.status)) {
    const where =
      allowedIn.length === 0 ? `never for a ${state.type} change` : `only in status ${allowedIn.join(', ')}`;
    throw invalidState(`${command.type} is not allowed in status ${state.status} (${where})`);
  }
};

const decideChangeRequest = (
  command: ChangeRequestCommand,
  state: ChangeRequestState,
  ctx: ChangeRequestContext,
): ChangeRequestEvent[] => {
  if (command.type === 'SubmitChange') return decideSubmit(command, state, ctx);
  if (!state.exists) throw notFound('no such change request');
  checkPolicy(command, state, ctx.actor);
  const by = actorRef(ctx.actor);
  const at = ctx.now;
  const notRequester = (what: string) => {
    if (isOriginalRequester(state, ctx.actor)) {
      throw segregationOfDuties(`nobody ${what} a change they requested`, 'requester-is-not-approver');
    }
  };

  switch (command.type) {
    case 'AmendChange':
      return decideAmend(command, state, ctx);
    case 'RecordReview':
      notRequester('reviews');
      return decideReview(command, state, ctx);
    case 'ApproveChange':
    case 'RejectChange': {
      const level = state.requiredApproval ?? requiredApprovalFor(state.request.risk?.level ?? 'high');
      if (level === 'management' && !ctx.actor.roles.includes('management')) {
        throw forbidden('a high-risk change needs management approval', 'high-risk-needs-management');
      }
      notRequester(command.type === 'ApproveChange' ? 'approves' : 'rejects');
      const riskLevel = state.request.risk?.level ?? 'high';
      // Which rule made this level the deciding one, as ReviewsCompleted named it.
      const rule = approvalRuleFor(level);
      if (command.type === 'ApproveChange') {
        return [
          { type: 'ChangeApproved', data: { level, riskLevel, rule, comment: command.comment, by, at } },
        ];
      }
      return [
        {
          type: 'ChangeRejected',
          data: { stage: 'approval', level, riskLevel, rule, reason: command.reason, by, at },
        },
      ];
    }
    case 'ScheduleChange':
      checkTimes(command.plannedStart, command.plannedEnd, 'schedule', 'plannedEnd');
      return [
        {
          type: 'ChangeScheduled',
          data: {
            plannedStart: command.plannedStart,
            plannedEnd: command.plannedEnd,
            maintenanceWindow: command.maintenanceWindow,
            rescheduled: state.status === 'scheduled',
            // what a reschedule moved, for the audit trail
            ...(state.status === 'scheduled' && state.schedule
              ? {
                  previous: {
                    plannedStart: state.schedule.plannedStart,
                    plannedEnd: state.schedule.plannedEnd,
                    maintenanceWindow: state.schedule.maintenanceWindow,
                  },
                }
              : {}),
            by,
            at,
          },
        },
      ];
    case 'CompleteChecklistItem': {
      const ticked = state.checklist[command.item];
      return [
        {
          type: 'ChecklistItemCompleted',
          data: {
            item: command.item,
            note: command.note,
            by,
            at,
            ...(ticked && {
              previous: {
                by: ticked.by,
                at: ticked.at,
                ...(ticked.note !== undefined && { note: ticked.note }),
              },
            }),
          },
        },
      ];
    }
    case 'StartImplementation': {
      assertNotApprover(state, ctx.actor, 'start its implementation');
      const missing = requiredChecklistItems(state).filter((item) => state.checklist[item] === undefined);
      if (missing.length > 0) {
        throw ruleViolation(
          `pre-implementation checklist incomplete: ${missing.join(', ')}`,
          'checklist-complete',
        );
      }
      return [
        {
          type: 'ImplementationStarted',
          data: {
            emergency: false,
            scheduledStart: state.schedule?.plannedStart,
            scheduledEnd: state.schedule?.plannedEnd,
            by,
            at,
          },
        },
      ];
    }
    case 'RecordImplementationStep':
      assertNotApprover(state, ctx.actor, 'record its implementation steps');
      return [
        {
          type: 'ImplementationStepRecorded',
          data: { sequence: state.implementation.steps.length + 1, description: command.description, by, at },
        },
      ];
    case 'RecordImplementationIssue':
      assertNotApprover(state, ctx.actor, 'record issues of its implementation');
      return [
        {
          type: 'ImplementationIssueRecorded',
          data: { description: command.description, severity: command.severity, by, at },
        },
      ];
    case 'RecordVerification': {
      assertNotApprover(state, ctx.actor, 'verify its implementation');
      const passed = command.functionalityTested && command.systemHealthVerified && command.logsChecked;
      return [
        {
          type: 'VerificationRecorded',
          data: {
            functionalityTested: command.functionalityTested,
            systemHealthVerified: command.systemHealthVerified,
            logsChecked: command.logsChecked,
            passed,
            notes: command.notes,
            by,
            at,
            ...(state.implementation.verification && {
              previous: {
                passed: state.implementation.verification.passed,
                by: state.implementation.verification.by,
                at: state.implementation.verification.at,
              },
            }),
          },
        },
      ];
    }
    case 'CompleteImplementation':
      assertNotApprover(state, ctx.actor, 'complete its implementation');
      if (command.outcome === 'successful' && state.implementation.verification?.passed !== true) {
        throw ruleViolation(
          state.implementation.verification
            ? 'a successful outcome needs a verification with functionality tested, system health verified and logs checked'
            : 'a successful outcome needs a passing verification; none is recorded',
          'successful-needs-verification',
        );
      }
      return [
        { type: 'ImplementationCompleted', data: { outcome: command.outcome, notes: command.notes, by, at } },
      ];
    case 'RecordPostImplementationReview':
      if (state.postImplementationReview) {
        throw ruleViolation(
          'the post-implementation review is already recorded',
          'one-post-implementation-review',
        );
      }
      return [
        {
          type: 'PostImplementationReviewRecorded',
          data: {
            documentationUpdated: command.documentationUpdated,
            issues: command.issues,
            lessonsLearned: command.lessonsLearned,
            improvements: command.improvements,
            by,
            at,
          },
        },
      ];
    case 'RecordRetrospectiveDecision': {
      notRequester('retrospectively approves');
      // The mirror of "the approver does not start its implementation": nobody who worked on
      // an emergency judges that work afterwards.
      if (state.implementation.workedBy?.includes(ctx.actor.id)) {
        throw segregationOfDuties(
          'nobody retrospectively approves an emergency change they worked on (started it or recorded its implementation)',
          'implementer-is-not-retrospective-approver',
        );
      }
      if (state.retrospectiveDecision) {
        throw ruleViolation('the retrospective decision is already recorded', 'one-retrospective-decision');
      }
      const missing: string[] = [];
      if (!state.postImplementationReview) missing.push('post-implementation review');
      const fields = missingRequestFields(state.request);
      if (fields.length > 0) missing.push(`complete change request (${fields.join(', ')})`);
      if (missing.length > 0) {
        throw ruleViolation(
          `retrospective approval needs: ${missing.join('; ')}`,
          'retrospective-prerequisites',
        );
      }
      return [
        {
          type: 'RetrospectiveDecisionRecorded',
          data: {
            decision: command.decision,
            comment: command.comment,
            rule: 'emergency-needs-retrospective-approval-by-management',
            by,
            at,
          },
        },
      ];
    }
    case 'CloseChange': {
      const missing: string[] = [];
      if (!state.postImplementationReview) missing.push('post-implementation review');
      if (state.type === 'emergency' && !state.retrospectiveDecision) missing.push('retrospective decision');
      if (missing.length > 0)
        throw ruleViolation(`closing needs: ${missing.join('; ')}`, 'close-prerequisites');
      const rule =
        state.type === 'emergency'
          ? 'emergency-close-needs-post-implementation-review-and-retrospective-decision'
          : 'close-needs-post-implementation-review';
      return [{ type: 'ChangeClosed', data: { rule, by, at } }];
    }
    case 'CancelChange':
      return [
        { type: 'ChangeCancelled', data: { reason: command.reason, statusBefore: state.status, by, at } },
      ];
    default: {
      const _exhaustive: never = command;
      throw validationFailed(`unknown command ${(_exhaustive as { type: string }).type}`);
    }
  }
};

export const changeRequestDecider: Decider<
  ChangeRequestCommand,
  ChangeRequestEvent,
  ChangeRequestState,
  ChangeRequestContext
> = {
  initialState: initialChangeRequestState,
  decide: decideChangeRequest,
  evolve: evolveChangeRequest,
};

/** The stream category of change requests: `changeRequest-CHG-001`. */
export const CHANGE_REQUEST_STREAM_PREFIX = 'changeRequest-';
export const changeRequestStreamId = (changeId: string) => `${CHANGE_REQUEST_STREAM_PREFIX}${changeId}`;
export const formatChangeId = (n: number) => `CHG-${String(n).padStart(3, '0')}`;
