import { randomUUID } from 'node:crypto';
import {
  type Actor,
  type ChangeRequestCommand,
  type ChangeRequestState,
  changeRequestDecider,
  DomainError,
  evolveChangeRequest,
  formatChangeId,
  initialChangeRequestState,
  REVIEW_CRITERIA,
  type ReviewKind,
  type Role,
  type StandardTemplateState,
} from '@changeledger/domain';
import type { EventStore, NewEvent } from '@changeledger/event-store';

/** Mulberry32: a small seeded PRNG, so a failing run can be replayed from its seed. */
export const seededRandom = (seed: number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

const actor = (id: string, roles: Role[]): Actor => ({ id, name: `User ${id}`, roles });
const ACTORS = {
  requester: actor('req', ['requester']),
  technical: actor('tech', ['technical-reviewer']),
  business: actor('biz', ['business-reviewer']),
  security: actor('sec', ['security-reviewer']),
  lead: actor('lead', ['infrastructure-lead']),
  manager: actor('mgmt', ['management']),
  implementer: actor('impl', ['implementer']),
};

const TEMPLATE: StandardTemplateState = {
  exists: true,
  id: 'STD-001',
  version: 1,
  name: 'Golden image LXC',
  description: 'd',
  procedure: ['step'],
  // covers every system below: standard changes are refused for systems outside it
  systemsScope: ['pve*', 'ceph', 'switch-core', 'fw1'],
  active: true,
};

const SYSTEMS = ['pve1', 'pve2', 'pve3', 'ceph', 'switch-core', 'fw1'];

const request = (rnd: () => number, type: 'normal' | 'standard' | 'emergency', n: number) => {
  const pick = <T>(items: readonly T[]) => items[Math.floor(rnd() * items.length)];
  const base = {
    title: `Change ${n} | ${pick(['VLAN', 'storage', 'patch', 'LXC'])}`,
    description: 'd',
    reason: 'r',
    priority: pick(['low', 'medium', 'high', 'critical'] as const),
    systemsAffected: [pick(SYSTEMS), pick(SYSTEMS)].filter((s, i, all) => all.indexOf(s) === i),
  };
  const later = {
    expectedImpact: 'e',
    implementationPlan: ['step'],
    rollbackPlan: 'rb',
    testingPlan: 'tp',
    risk: {
      level: type === 'standard' ? ('low' as const) : pick(['low', 'medium', 'high'] as const),
      potentialImpact: 'p',
      mitigation: 'm',
    },
    timeline: { proposedStart: '2026-12-01T22:00:00.000Z', estimatedDurationMinutes: 30 },
  };
  if (type === 'emergency') {
    return {
      ...base,
      ...(rnd() < 0.5 ? later : {}),
      emergency: { category: pick(['security', 'outage'] as const), justification: 'j' },
    };
  }
  return { ...base, ...later };
};

/** Candidate next commands for a change in its status, each with an actor that may send it. */
const candidates = (rnd: () => number, s: ChangeRequestState): [ChangeRequestCommand, Actor][] => {
  const review = (
    kind: ReviewKind,
    verdict: 'approve' | 'request-changes' | 'reject',
  ): [ChangeRequestCommand, Actor] => [
    {
      type: 'RecordReview',
      kind,
      verdict,
      notes: 'n',
      criteria: Object.fromEntries(REVIEW_CRITERIA[kind].map((k) => [k, 'ok'])),
    },
    ACTORS[kind],
  ];
  const approver =
    s.requiredApproval === 'management' ? ACTORS.manager : rnd() < 0.5 ? ACTORS.lead : ACTORS.manager;
  switch (s.status) {
    case 'in-review':
      return [
        review('technical', 'approve'),
        review('business', 'approve'),
        review('security', 'approve'),
        review('technical', 'approve'),
        review('business', 'approve'),
        review('security', 'approve'),
        review('security', 'request-changes'),
        review('business', 'reject'),
        [{ type: 'CancelChange', reason: 'no longer needed' }, ACTORS.requester],
        // an amendment while in review (the reviews so far are voided)
        [
          { type: 'AmendChange', fields: { description: `in review ${Math.floor(rnd() * 100)}` } },
          ACTORS.requester,
        ],
      ];
    case 'changes-requested':
      return [
        [{ type: 'AmendChange', fields: { title: `${s.request.title} (rev)` } }, ACTORS.requester],
        [{ type: 'AmendChange', fields: { title: `${s.request.title} (rev)` } }, ACTORS.requester],
        [{ type: 'CancelChange', reason: 'dropped after the review' }, ACTORS.requester],
      ];
    case 'awaiting-approval':
      return [
        [{ type: 'ApproveChange', comment: 'ok' }, approver],
        [{ type: 'ApproveChange', comment: 'ok' }, approver],
        [{ type: 'ApproveChange', comment: 'ok' }, approver],
        [{ type: 'RejectChange', reason: 'no' }, approver],
        [{ type: 'AmendChange', fields: { description: `d${Math.floor(rnd() * 100)}` } }, ACTORS.requester],
      ];
    case 'approved':
    case 'scheduled': {
      const items = (
        [
          'backups-verified',
          'rollback-plan-prepared',
          'stakeholders-notified',
          ...(s.schedule?.maintenanceWindow ? (['maintenance-window-scheduled'] as const) : []),
        ] as const
      ).filter((i) => !s.checklist[i]);
      return [
        [
          {
            type: 'ScheduleChange',
            plannedStart: '2026-12-01T22:00:00.000Z',
            plannedEnd: '2026-12-01T23:00:00.000Z',
            maintenanceWindow: rnd() < 0.25,
          },
          ACTORS.implementer,
        ],
        ...items.map((item): [ChangeRequestCommand, Actor] => [
          { type: 'CompleteChecklistItem', item },
          ACTORS.implementer,
        ]),
        [{ type: 'StartImplementation' }, ACTORS.implementer],
        [{ type: 'StartImplementation' }, ACTORS.implementer],
        ...(rnd() < 0.1
          ? [
              [{ type: 'CancelChange', reason: 'window missed' }, ACTORS.lead] as [
                ChangeRequestCommand,
                Actor,
              ],
            ]
          : []),
      ];
    }
    case 'in-progress':
      return [
        [{ type: 'RecordImplementationStep', description: 'did a thing' }, ACTORS.implementer],
        [{ type: 'RecordImplementationIssue', description: 'hiccup', severity: 'low' }, ACTORS.implementer],
        [
          {
            type: 'RecordVerification',
            functionalityTested: true,
            systemHealthVerified: true,
            logsChecked: rnd() < 0.9,
          },
          ACTORS.implementer,
        ],
        [{ type: 'CompleteImplementation', outcome: 'successful' }, ACTORS.implementer],
        [{ type: 'CompleteImplementation', outcome: 'successful' }, ACTORS.implementer],
        [
          { type: 'CompleteImplementation', outcome: rnd() < 0.5 ? 'failed' : 'rolled-back' },
          ACTORS.implementer,
        ],
      ];
    case 'implemented': {
      // only whoever declared an emergency completes its request
      const declarer = s.requestedBy?.id === ACTORS.implementer.id ? ACTORS.implementer : ACTORS.requester;
      return [
        [
          {
            type: 'RecordPostImplementationReview',
            documentationUpdated: true,
            lessonsLearned: 'l',
            improvements: ['i'],
          },
          ACTORS.implementer,
        ],
        [
          {
            type: 'AmendChange',
            fields: {
              expectedImpact: 'e',
              implementationPlan: ['s'],
              rollbackPlan: 'r',
              testingPlan: 't',
              risk: { level: 'medium', potentialImpact: 'p', mitigation: 'm' },
              timeline: { proposedStart: '2026-11-01T00:00:00.000Z', estimatedDurationMinutes: 10 },
            },
          },
          declarer,
        ],
        // an emergency's plan completed in two amendments (the first leaves fields missing)
        [{ type: 'AmendChange', fields: { rollbackPlan: 'r', testingPlan: 't' } }, declarer],
        [
          { type: 'RecordRetrospectiveDecision', decision: rnd() < 0.8 ? 'approve' : 'reject', comment: 'c' },
          ACTORS.manager,
        ],
        [{ type: 'CloseChange' }, ACTORS.lead],
      ];
    }
    default:
      return [];
  }
};

/** An event's metadata as the service writes it: `who` recorded it at `at`. */
export const metadataFor = (who: Actor, at: string) => ({
  actor: { id: who.id, name: who.name, roles: [...who.roles] },
  occurredAt: at,
  correlationId: randomUUID(),
  causationId: null,
  schemaVersion: 1,
});

/**
 * Writes `count` random but valid change lifecycles, interleaved, through the real deciders
 * into the event store. Returns the number of events written.
 */
export const writeRandomLifecycles = async (
  store: EventStore,
  options: { seed: number; count: number; startAt?: Date; idOffset?: number },
): Promise<number> => {
  const rnd = seededRandom(options.seed);
  let clock = (options.startAt ?? new Date('2026-10-01T08:00:00.000Z')).getTime();
  const tick = () => new Date((clock += Math.floor(rnd() * 3_600_000))).toISOString();
  let written = 0;
  const append = async (
    streamId: string,
    events: { type: string; data: unknown }[],
    expected: 'no-stream' | bigint,
    who: Actor,
    at: string,
  ) => {
    const batch: NewEvent[] = events.map((e) => ({
      eventId: randomUUID(),
      type: e.type,
      data: e.data as Record<string, unknown>,
      metadata: metadataFor(who, at),
    }));
    await store.append(streamId, batch, expected);
    written += batch.length;
  };
  const at0 = tick();
  const hasTemplate = (await store.readStream('standardTemplate-STD-001')).length > 0;
  if (!hasTemplate)
    await append(
      'standardTemplate-STD-001',
      [
        {
          type: 'StandardTemplateCreated',
          data: {
            templateId: 'STD-001',
            name: TEMPLATE.name,
            description: 'd',
            procedure: TEMPLATE.procedure,
            systemsScope: TEMPLATE.systemsScope,
            by: { id: 'lead', name: 'User lead' },
            at: at0,
          },
        },
      ],
      'no-stream',
      ACTORS.lead,
      at0,
    );
  const active: ChangeRequestState[] = [];
  let refusals = 0;
  let created = 0;
  while (created < options.count || active.length > 0) {
    if (created < options.count && (active.length < 40 || rnd() < 0.2)) {
      created++;
      const id = formatChangeId(created + (options.idOffset ?? 0));
      const type = rnd() < 0.2 ? 'standard' : rnd() < 0.25 ? 'emergency' : 'normal';
      const who = type === 'emergency' && rnd() < 0.5 ? ACTORS.implementer : ACTORS.requester;
      const at = tick();
      const events = changeRequestDecider.decide(
        {
          type: 'SubmitChange',
          changeId: id,
          changeType: type,
          fields: request(rnd, type, created),
          standardTemplateId: type === 'standard' ? 'STD-001' : undefined,
        },
        initialChangeRequestState(),
        { actor: who, now: at, template: TEMPLATE },
      );
      await append(`changeRequest-${id}`, events, 'no-stream', who, at);
      active.push(events.reduce(evolveChangeRequest, initialChangeRequestState()));
      continue;
    }
    const index = Math.floor(rnd() * active.length);
    const state = active[index];
    const options_ = candidates(rnd, state);
    if (options_.length === 0) {
      active.splice(index, 1);
      continue;
    }
    const [command, who] = options_[Math.floor(rnd() * options_.length)];
    const at = tick();
    try {
      const events = changeRequestDecider.decide(command, state, { actor: who, now: at });
      await append(`changeRequest-${state.id}`, events, BigInt(state.version - 1), who, at);
      active[index] = events.reduce(evolveChangeRequest, state);
      refusals = 0;
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      // A generator bug would otherwise spin here without ever yielding.
      if (++refusals > 10_000)
        throw new Error(`random lifecycles: ${state.id} in ${state.status} cannot move on`);
    }
  }
  return written;
};
