import { expect } from '@jest/globals';
import { type AppHarness, type HttpResult, type TestUser, USERS } from './app-harness';

export const normalChange = (
  risk: 'low' | 'medium' | 'high' = 'low',
  overrides: Record<string, unknown> = {},
) => ({
  type: 'normal',
  title: 'Reconfigure VLAN 20 on pve-cluster',
  description: 'Move the storage network to VLAN 20',
  reason: 'Separate storage traffic from VM traffic',
  expectedImpact: 'Storage path flaps for up to 10 s per node',
  priority: 'medium',
  systemsAffected: ['pve1', 'pve2', 'switch-core'],
  implementationPlan: ['Drain pve1', 'Change bridge VLAN', 'Verify Ceph health', 'Repeat for pve2'],
  rollbackPlan: 'Restore /etc/network/interfaces from backup and reboot the node',
  testingPlan: 'ceph -s healthy, VM live migration succeeds',
  risk: { level: risk, potentialImpact: 'Storage outage', mitigation: 'One node at a time' },
  timeline: {
    proposedStart: '2026-12-01T22:00:00Z',
    estimatedDurationMinutes: 90,
    maintenanceWindow: { start: '2026-12-01T22:00:00Z', end: '2026-12-02T00:00:00Z' },
  },
  ...overrides,
});

export const emergencyChange = (overrides: Record<string, unknown> = {}) => ({
  type: 'emergency',
  title: 'Patch OpenSSH CVE on all nodes',
  description: 'Apply the security update for openssh-server',
  reason: 'Actively exploited vulnerability',
  priority: 'critical',
  systemsAffected: ['pve1', 'pve2', 'pve3'],
  emergency: { category: 'security', justification: 'Exploit seen in the wild' },
  ...overrides,
});

/** What an emergencyChange may leave for later: the rest of its request, as its declarer completes it. */
export const emergencyPlan = {
  expectedImpact: 'sshd restarts',
  implementationPlan: ['apt update', 'apt install openssh-server', 'systemctl restart ssh'],
  rollbackPlan: 'apt install the previous version',
  testingPlan: 'ssh into every node',
  risk: { level: 'medium', potentialImpact: 'lockout', mitigation: 'console access ready' },
  timeline: { proposedStart: '2026-11-26T08:00:00Z', estimatedDurationMinutes: 30 },
};

export const CRITERIA = {
  technical: { feasibility: 'ok', impactAssessment: 'small', riskEvaluation: 'acceptable' },
  business: { businessImpact: 'none', resourceRequirements: 'one engineer', timelineAlignment: 'fits' },
  security: { securityImplications: 'none', complianceRequirements: 'met', riskAssessment: 'low' },
} as const;

export const expectStatus = <T>(result: HttpResult<T>, status: number, code?: string) => {
  const detail = JSON.stringify(result.body);
  expect(`${result.status} ${detail}`).toMatch(new RegExp(`^${status} `));
  if (code) expect((result.body as { code?: string }).code).toBe(code);
  return result;
};

export const submit = async (
  app: AppHarness,
  body: unknown = normalChange(),
  as: TestUser = USERS.requester,
) => {
  const result = expectStatus(
    await app.post<{ id: string; version: number; status: string; position: string }>('/changes', body, as),
    201,
  );
  return result.body;
};

/** Takes a normal change through the three approving reviews. */
export const reviewAll = async (app: AppHarness, id: string) => {
  for (const [kind, user] of [
    ['technical', USERS.technical],
    ['business', USERS.business],
    ['security', USERS.security],
  ] as const) {
    expectStatus(
      await app.post(
        `/changes/${id}/reviews`,
        { kind, verdict: 'approve', notes: `${kind} ok`, criteria: CRITERIA[kind] },
        user,
      ),
      200,
    );
  }
};

/** Schedules, ticks the checklist and starts (by the implementer). */
/** Schedules an approved change and ticks its checklist, as the implementer. */
export const prepare = async (app: AppHarness, id: string, maintenanceWindow = true) => {
  expectStatus(
    await app.post(
      `/changes/${id}/schedule`,
      { plannedStart: '2026-12-01T22:00:00Z', plannedEnd: '2026-12-02T00:00:00Z', maintenanceWindow },
      USERS.implementer,
    ),
    200,
  );
  for (const item of [
    'backups-verified',
    'rollback-plan-prepared',
    'stakeholders-notified',
    'maintenance-window-scheduled',
  ]) {
    if (item === 'maintenance-window-scheduled' && !maintenanceWindow) continue;
    expectStatus(await app.post(`/changes/${id}/checklist`, { item }, USERS.implementer), 200);
  }
};

export const prepareAndStart = async (app: AppHarness, id: string, maintenanceWindow = true) => {
  await prepare(app, id, maintenanceWindow);
  return expectStatus(await app.post(`/changes/${id}/start`, {}, USERS.implementer), 200);
};

export const implementSuccessfully = async (app: AppHarness, id: string) => {
  expectStatus(
    await app.post(`/changes/${id}/steps`, { description: 'Drained pve1' }, USERS.implementer),
    200,
  );
  expectStatus(
    await app.post(
      `/changes/${id}/verification`,
      { functionalityTested: true, systemHealthVerified: true, logsChecked: true },
      USERS.implementer,
    ),
    200,
  );
  return expectStatus(
    await app.post(`/changes/${id}/complete`, { outcome: 'successful' }, USERS.implementer),
    200,
  );
};

export const postImplementationReview = {
  documentationUpdated: true,
  lessonsLearned: 'Drain nodes earlier',
  improvements: ['Automate the drain'],
};

/** The implementer's post-implementation review of a change (`postImplementationReview`). */
export const reviewImplementation = async (app: AppHarness, id: string) =>
  expectStatus(
    await app.post(`/changes/${id}/post-implementation-review`, postImplementationReview, USERS.implementer),
    200,
  );
