/**
 * The compliance report end to end: a seeded quarter of change lifecycles driven through the
 * HTTP API on a fake clock, the report's figures checked against figures this test computes on
 * its own from the plan it executed, the formats, the access rules, the CLI, and the HTML page
 * rendered by a real browser.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodePng, countPixels } from '../support/png';
import { seededRandom } from '../support/random-lifecycles';
import { AppHarness, type TestUser, USERS } from './support/app-harness';
import { CRITERIA, expectStatus, normalChange } from './support/change-fixtures';
import { cliBuilt, cliReachesEvents, runCli } from './support/cli';

const run = promisify(execFile);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const CHANGES = 60;

const PERIOD = {
  label: '2026-Q3',
  from: Date.parse('2026-07-01T00:00:00.000Z'),
  to: Date.parse('2026-10-01T00:00:00.000Z'),
};
const AS_OF = PERIOD.to - 1;

type ChangeType = 'standard' | 'normal' | 'emergency';
type Outcome = 'successful' | 'failed' | 'rolled-back';

/** What the test decided would happen to one change, and when (ms). */
interface Plan {
  index: number;
  id?: string;
  type: ChangeType;
  submitAt: number;
  /** Normal: when it left review (all reviews in, rejected in review, or cancelled in review). */
  reviewEndAt?: number;
  approveAt?: number;
  rejectAt?: number;
  rejectStage?: 'review' | 'approval';
  cancelAt?: number;
  window?: { start: number; end: number };
  startAt?: number;
  completeAt?: number;
  outcome?: Outcome;
  pirAt?: number;
  /** A failure whose completion says what went wrong (by the plan's index, one in two). */
  failureNoted?: boolean;
  closedAt?: number;
  /** Its post-implementation review says the documentation was not updated (one in five). */
  documentationNotUpdated?: boolean;
  decision?: 'approve' | 'reject';
  decisionAt?: number;
  /** A review by the requester appended straight to the event store (an imported record). */
  selfReviewAt?: number;
  /** An emergency's record that stakeholders were notified (two in three have one). */
  notifiedAt?: number;
  /** The implementation step recorded (five in six of those completed have one). */
  stepAt?: number;
}

interface Step {
  at: number;
  plan: Plan;
  order: number;
  act: (plan: Plan) => Promise<unknown>;
}

const iso = (ms: number) => new Date(ms).toISOString();

describe('compliance report', () => {
  let app: AppHarness;
  let now = Date.parse('2026-06-01T08:00:00.000Z');
  const clock = { now: () => new Date(now) };
  const plans: Plan[] = [];
  let templateId = '';

  const post = async (path: string, body: unknown, as: TestUser, status = 200) =>
    expectStatus(await app.post(path, body, as), status).body;

  /** The quarter: every change's plan drawn from a seeded generator, then run in time order. */
  const planAndRun = async () => {
    const rnd = seededRandom(20260702);
    const between = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo));
    const steps: Step[] = [];
    const at = (plan: Plan, time: number, act: Step['act']) =>
      steps.push({ at: time, plan, order: steps.length, act });

    for (let index = 0; index < CHANGES; index++) {
      const roll = rnd();
      const type: ChangeType = roll < 0.6 ? 'normal' : roll < 0.8 ? 'standard' : 'emergency';
      const plan: Plan = {
        index,
        type,
        submitAt: between(Date.parse('2026-06-15T00:00:00Z'), Date.parse('2026-09-28T00:00:00Z')),
      };
      plans.push(plan);
      const risk = (['low', 'medium', 'high'] as const)[between(0, 3)];
      const body =
        type === 'normal'
          ? normalChange(risk, { title: `Change ${index}` })
          : type === 'standard'
            ? normalChange('low', {
                type: 'standard',
                standardTemplateId: templateId,
                title: `Change ${index}`,
                implementationPlan: ['pct create'],
              })
            : normalChange('high', {
                type: 'emergency',
                title: `Change ${index}`,
                emergency: { category: 'outage', justification: 'Node down' },
              });
      at(plan, plan.submitAt, async (p) => {
        p.id = ((await post('/changes', body, USERS.requester, 201)) as { id: string }).id;
      });

      let t = plan.submitAt;
      let implementable = type !== 'emergency';
      if (type === 'normal') {
        const reviewHours = rnd() < 0.15 ? between(15 * 24, 25 * 24) : between(2, 72);
        const reviewEnd = t + reviewHours * HOUR;
        plan.reviewEndAt = reviewEnd;
        if (index % 7 === 3) plan.selfReviewAt = t + HOUR / 2;
        const path = rnd();
        if (path < 0.1) {
          plan.rejectAt = reviewEnd;
          plan.rejectStage = 'review';
          const review = (kind: 'technical' | 'business', verdict: string, user: TestUser) => (p: Plan) =>
            post(
              `/changes/${p.id}/reviews`,
              { kind, verdict, notes: verdict, criteria: CRITERIA[kind] },
              user,
            );
          at(plan, t + HOUR, review('technical', 'approve', USERS.technical));
          at(plan, reviewEnd, review('business', 'reject', USERS.business));
          implementable = false;
        } else if (path < 0.15) {
          plan.cancelAt = reviewEnd;
          at(plan, reviewEnd, (p) => post(`/changes/${p.id}/cancel`, { reason: 'Superseded' }, USERS.lead));
          implementable = false;
        } else {
          // A forged security review (below) stands in for the real one.
          const kinds =
            plan.selfReviewAt === undefined
              ? (['technical', 'business', 'security'] as const)
              : (['technical', 'business'] as const);
          const users = { technical: USERS.technical, business: USERS.business, security: USERS.security };
          const review = (kind: (typeof kinds)[number], verdict: string) => (p: Plan) =>
            post(
              `/changes/${p.id}/reviews`,
              { kind, verdict, notes: verdict, criteria: CRITERIA[kind] },
              users[kind],
            );
          let first = t;
          if (plan.selfReviewAt === undefined && index % 5 === 1 && reviewHours > 6) {
            // Changes requested, amended (which voids the reviews), reviewed again: one long wait.
            at(plan, t + HOUR, review('technical', 'approve'));
            at(plan, t + 2 * HOUR, review('security', 'request-changes'));
            at(plan, t + 3 * HOUR, async (p) =>
              expectStatus(
                await app.request('PATCH', `/changes/${p.id}`, {
                  as: USERS.requester,
                  body: { description: 'With the details asked for' },
                }),
                200,
              ),
            );
            first = t + 3 * HOUR;
          }
          kinds.forEach((kind, i) =>
            at(
              plan,
              i === kinds.length - 1 ? reviewEnd : first + (i + 1) * (HOUR / 4),
              review(kind, 'approve'),
            ),
          );
          t = reviewEnd + between(1, 48) * HOUR;
          // The wait for review and approval ends with the approval decision.
          plan.reviewEndAt = t;
          const approver = risk === 'high' || rnd() < 0.5 ? USERS.manager : USERS.lead;
          if (rnd() < 0.1) {
            plan.rejectAt = t;
            plan.rejectStage = 'approval';
            at(plan, t, (p) => post(`/changes/${p.id}/reject`, { reason: 'Not now' }, approver));
            implementable = false;
          } else {
            plan.approveAt = t;
            at(plan, t, (p) => post(`/changes/${p.id}/approve`, { comment: 'ok' }, approver));
            if (rnd() < 0.05) {
              plan.cancelAt = t + 2 * HOUR;
              at(plan, plan.cancelAt, (p) =>
                post(`/changes/${p.id}/cancel`, { reason: 'Window lost' }, USERS.lead),
              );
              implementable = false;
            }
          }
        }
      }

      if (implementable) {
        const scheduledAt = t + HOUR;
        // Whole seconds: every other schedule is sent with a +02:00 offset and no milliseconds.
        const start = Math.floor((scheduledAt + between(24, 96) * HOUR) / 1000) * 1000;
        plan.window = { start, end: start + 2 * HOUR };
        const withOffset = (ms: number) => `${new Date(ms + 2 * HOUR).toISOString().slice(0, 19)}+02:00`;
        const asSent = index % 2 === 1 ? withOffset : iso;
        at(plan, scheduledAt, (p) =>
          post(
            `/changes/${p.id}/schedule`,
            {
              plannedStart: asSent(p.window!.start),
              plannedEnd: asSent(p.window!.end),
              maintenanceWindow: false,
            },
            USERS.implementer,
          ),
        );
        ['backups-verified', 'rollback-plan-prepared', 'stakeholders-notified'].forEach((item, i) =>
          at(plan, scheduledAt + (i + 1) * 60_000, (p) =>
            post(`/changes/${p.id}/checklist`, { item }, USERS.implementer),
          ),
        );
        const timing = rnd();
        // On time means exactly at the window's start for some: that is inside the window.
        plan.startAt =
          timing < 0.1
            ? start - HOUR
            : timing < 0.2
              ? plan.window.end + HOUR
              : timing < 0.4
                ? start
                : start + 10 * 60_000;
        plan.completeAt = timing >= 0.2 && timing < 0.3 ? plan.window.end + HOUR : plan.startAt + HOUR;
        at(plan, plan.startAt, (p) => post(`/changes/${p.id}/start`, {}, USERS.implementer));
      } else if (type === 'emergency') {
        plan.startAt = plan.submitAt;
        plan.completeAt = plan.submitAt + between(1, 4) * HOUR;
        // one in five left at work (never completed), by the plan's index
        if (index % 5 === 4) plan.completeAt = undefined;
        // by the plan's index, not the random sequence, which the other plans are drawn from
        if (index % 3 !== 0) {
          plan.notifiedAt = plan.submitAt + 30 * 60_000;
          at(plan, plan.notifiedAt, (p) =>
            post(`/changes/${p.id}/checklist`, { item: 'stakeholders-notified' }, USERS.implementer),
          );
        }
      }

      if (plan.completeAt !== undefined) {
        // by the plan's index, not the random sequence, which the other plans are drawn from
        if (index % 6 !== 1) {
          plan.stepAt = plan.startAt! + 5 * 60_000;
          at(plan, plan.stepAt, (p) =>
            post(`/changes/${p.id}/steps`, { description: `Step of change ${p.index}` }, USERS.implementer),
          );
        }
        const o = rnd();
        plan.outcome =
          type === 'emergency'
            ? o < 0.85
              ? 'successful'
              : 'failed'
            : o < 0.75
              ? 'successful'
              : o < 0.9
                ? 'failed'
                : 'rolled-back';
        at(plan, plan.completeAt - 10 * 60_000, (p) =>
          post(
            `/changes/${p.id}/verification`,
            { functionalityTested: true, systemHealthVerified: true, logsChecked: true },
            USERS.implementer,
          ),
        );
        plan.failureNoted = plan.outcome !== 'successful' && index % 2 === 0; // not drawn, as below
        at(plan, plan.completeAt, (p) =>
          post(
            `/changes/${p.id}/complete`,
            { outcome: p.outcome, ...(p.failureNoted ? { notes: 'pve2 lost quorum; rolled back' } : {}) },
            USERS.implementer,
          ),
        );
        const reviewed =
          type === 'emergency' ? rnd() < 0.9 : plan.outcome === 'successful' ? rnd() < 0.5 : rnd() < 0.6;
        if (reviewed) {
          plan.pirAt =
            plan.completeAt + (type === 'emergency' ? between(2, 30) * HOUR : between(1, 10) * DAY);
          plan.documentationNotUpdated = index % 5 === 3; // not drawn: the draws stay as they were
          at(plan, plan.pirAt, (p) =>
            post(
              `/changes/${p.id}/post-implementation-review`,
              {
                documentationUpdated: !p.documentationNotUpdated,
                lessonsLearned: `Lesson of change ${p.index}`,
                improvements: [`Improvement ${p.index}`],
              },
              USERS.lead,
            ),
          );
        }
        let closeAt = plan.pirAt;
        if (type === 'emergency' && plan.pirAt !== undefined && rnd() < 0.85) {
          const draw = rnd();
          plan.decision = draw < 0.15 || index % 4 === 2 ? 'reject' : 'approve';
          plan.decisionAt = plan.pirAt + between(1, 6 * 24) * HOUR;
          closeAt = plan.decisionAt;
          at(plan, plan.decisionAt, (p) =>
            post(
              `/changes/${p.id}/retrospective-approval`,
              { decision: p.decision, comment: 'CAB' },
              USERS.manager,
            ),
          );
        } else if (type === 'emergency') closeAt = undefined;
        if (closeAt !== undefined) {
          plan.closedAt = closeAt + HOUR;
          at(plan, plan.closedAt, (p) => post(`/changes/${p.id}/close`, {}, USERS.lead));
        }
      }

      if (plan.selfReviewAt !== undefined) {
        // Not possible through the API (403 SEGREGATION_OF_DUTIES): an imported or forged record.
        at(plan, plan.selfReviewAt, (p) =>
          app.store.append(
            `changeRequest-${p.id}`,
            [
              {
                eventId: randomUUID(),
                type: 'ReviewRecorded',
                data: {
                  kind: 'security',
                  verdict: 'approve',
                  notes: 'reviewing my own change',
                  criteria: CRITERIA.security,
                  by: { id: USERS.requester.sub, name: USERS.requester.name },
                  at: iso(p.selfReviewAt!),
                },
                metadata: {
                  actor: { id: USERS.requester.sub, name: USERS.requester.name, roles: ['requester'] },
                  occurredAt: iso(p.selfReviewAt!),
                  correlationId: randomUUID(),
                  causationId: null,
                  schemaVersion: 1,
                },
              },
            ],
            'any',
          ),
        );
      }
    }

    steps.sort((a, b) => a.at - b.at || a.order - b.order);
    for (const step of steps) {
      now = step.at;
      await step.act(step.plan);
    }
    now = Math.max(...steps.map((s) => s.at)) + DAY;
  };

  beforeAll(async () => {
    app = await AppHarness.start({}, { clock });
    templateId = (
      (await post(
        '/standard-templates',
        {
          name: 'Golden LXC',
          description: 'LXC from the golden image',
          procedure: ['pct create'],
          systemsScope: ['pve*', 'switch-core'],
        },
        USERS.lead,
        201,
      )) as { id: string }
    ).id;
    await planAndRun();
    await app.readModelsCaughtUp();
  }, 180_000);
  afterAll(async () => app.close());

  // ------------------------------------------------------------------------------------------
  // The expected figures, computed from the plans alone.

  const inPeriod = (t: number | undefined): t is number =>
    t !== undefined && t >= PERIOD.from && t < PERIOD.to;
  const ids = (list: Plan[]) =>
    list.map((p) => p.id!).sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  const addBusinessDays = (t: number, days: number) => {
    const d = new Date(t);
    for (let added = 0; added < days;) {
      d.setUTCDate(d.getUTCDate() + 1);
      if (d.getUTCDay() % 6 !== 0) added++;
    }
    return d.getTime();
  };
  const interpolated = (values: number[], p: number) => {
    if (values.length === 0) return null;
    const s = [...values].sort((a, b) => a - b);
    const rank = (p / 100) * (s.length - 1);
    const lower = s[Math.floor(rank)];
    const upper = s[Math.ceil(rank)];
    return Math.round((lower + (upper - lower) * (rank - Math.floor(rank))) * 100) / 100;
  };
  const lead = (hours: number[]) => ({
    count: hours.length,
    medianHours: interpolated(hours, 50),
    p90Hours: interpolated(hours, 90),
  });
  const due = (p: Plan) => addBusinessDays(p.completeAt!, 2);

  const expected = () => {
    const submitted = plans.filter((p) => inPeriod(p.submitAt));
    const count = (type: ChangeType) => submitted.filter((p) => p.type === type).length;
    const ended = plans.filter((p) => inPeriod(p.completeAt));
    const outcome = (o: Outcome) => ended.filter((p) => p.outcome === o).length;
    const rejected = plans.filter((p) => inPeriod(p.rejectAt));
    return {
      volumes: {
        submitted: {
          total: submitted.length,
          standard: count('standard'),
          normal: count('normal'),
          emergency: count('emergency'),
        },
        byMonth: ['2026-07', '2026-08', '2026-09'].map((month) => {
          const inMonth = submitted.filter((p) => iso(p.submitAt).startsWith(month));
          return {
            month,
            standard: inMonth.filter((p) => p.type === 'standard').length,
            normal: inMonth.filter((p) => p.type === 'normal').length,
            emergency: inMonth.filter((p) => p.type === 'emergency').length,
          };
        }),
        outcomes: {
          successful: outcome('successful'),
          failed: outcome('failed'),
          'rolled-back': outcome('rolled-back'),
        },
        cancelled: plans.filter((p) => inPeriod(p.cancelAt)).length,
        rejected: {
          total: rejected.length,
          inReview: rejected.filter((p) => p.rejectStage === 'review').length,
          atApproval: rejected.filter((p) => p.rejectStage === 'approval').length,
        },
        retrospectivelyRejected: plans.filter((p) => p.decision === 'reject' && inPeriod(p.decisionAt))
          .length,
      },
      successRate:
        ended.length === 0 ? null : Math.round((outcome('successful') / ended.length) * 10_000) / 10_000,
      emergencyShare:
        submitted.length === 0 ? null : Math.round((count('emergency') / submitted.length) * 10_000) / 10_000,
      leadTimes: {
        submittedToApproved: lead(
          plans.filter((p) => inPeriod(p.approveAt)).map((p) => (p.approveAt! - p.submitAt) / HOUR),
        ),
        approvedToImplementationStart: lead(
          plans
            .filter((p) => p.type === 'normal' && inPeriod(p.startAt))
            .map((p) => (p.startAt! - p.approveAt!) / HOUR),
        ),
        emergencyDeclaredToRetrospectiveApproval: lead(
          plans
            .filter((p) => p.decision === 'approve' && inPeriod(p.decisionAt))
            .map((p) => (p.decisionAt! - p.submitAt) / HOUR),
        ),
      },
      findings: {
        overdueRetrospectives: ids(
          plans.filter(
            (p) =>
              p.type === 'emergency' &&
              p.completeAt! <= AS_OF &&
              due(p) < AS_OF &&
              (p.decisionAt === undefined || p.decisionAt > AS_OF),
          ),
        ),
        lateRetrospectives: ids(
          plans.filter((p) => p.type === 'emergency' && inPeriod(p.decisionAt) && p.decisionAt! > due(p)),
        ),
        retrospectivelyRejected: ids(plans.filter((p) => p.decision === 'reject' && inPeriod(p.decisionAt))),
        emergenciesStillAtWork: ids(
          plans.filter(
            (p) =>
              p.type === 'emergency' &&
              p.submitAt <= AS_OF &&
              (p.completeAt === undefined || p.completeAt > AS_OF
                ? addBusinessDays(p.submitAt, 2) < AS_OF
                : // completed past the limit, which passed in the period
                  p.completeAt > addBusinessDays(p.submitAt, 2) && inPeriod(addBusinessDays(p.submitAt, 2))),
          ),
        ),
        implementedOutsideWindow: plans
          .filter((p) => p.window && inPeriod(p.startAt))
          .map((p) => {
            const reasons: string[] = [];
            if (p.startAt! < p.window!.start) reasons.push('started-early');
            if (p.startAt! > p.window!.end) reasons.push('started-late');
            else if (Math.min(p.completeAt!, AS_OF) > p.window!.end) reasons.push('overran');
            return [p.id!, reasons] as const;
          })
          .filter(([, reasons]) => reasons.length > 0)
          .sort(([a], [b]) => Number(a.slice(4)) - Number(b.slice(4))),
        // review due (5 business days after the end) by the as-of time, whichever period the
        // implementation ended in (plans begin before the quarter)
        failedWithoutReview: ids(
          plans.filter(
            (p) =>
              p.completeAt !== undefined &&
              addBusinessDays(p.completeAt, 5) < AS_OF &&
              p.outcome !== 'successful' &&
              (p.pirAt === undefined || p.pirAt > AS_OF),
          ),
        ),
        succeededWithoutReview: ids(
          plans.filter(
            (p) =>
              p.completeAt !== undefined &&
              addBusinessDays(p.completeAt, 5) < AS_OF &&
              p.outcome === 'successful' &&
              p.type !== 'emergency' && // its review is part of its (overdue) retrospective
              (p.pirAt === undefined || p.pirAt > AS_OF),
          ),
        ),
        unnotifiedEmergencies: ids(
          plans.filter((p) => p.type === 'emergency' && inPeriod(p.completeAt) && p.notifiedAt === undefined),
        ),
        undocumentedImplementations: ids(
          plans.filter((p) => p.type !== 'emergency' && inPeriod(p.completeAt) && p.stepAt === undefined),
        ),
        failuresWithoutIssues: ids(
          plans.filter(
            (p) =>
              p.outcome !== undefined &&
              p.outcome !== 'successful' &&
              !p.failureNoted &&
              inPeriod(p.closedAt),
          ),
        ),
        documentationNotUpdated: ids(plans.filter((p) => p.documentationNotUpdated && inPeriod(p.pirAt))),
        segregationOfDutiesExceptions: ids(plans.filter((p) => inPeriod(p.selfReviewAt))),
        staleInReview: plans
          .filter((p) => p.reviewEndAt !== undefined)
          .map((p) => {
            const end = Math.min(p.reviewEndAt!, AS_OF);
            return [p, end, (end - p.submitAt) / DAY] as const;
          })
          .filter(([p, end, days]) => p.submitAt <= AS_OF && end >= PERIOD.from && days > 14)
          .map(([p, , days]) => [p.id!, Math.ceil(days * 10) / 10] as const)
          .sort(([a], [b]) => Number(a.slice(4)) - Number(b.slice(4))),
      },
      lessons: plans
        .filter((p) => inPeriod(p.pirAt))
        .sort((a, b) => a.pirAt! - b.pirAt! || Number(a.id!.slice(4)) - Number(b.id!.slice(4)))
        .map((p) => p.id!),
    };
  };

  type Report = {
    period: { label: string; from: string; to: string };
    asOf: string;
    readModelPosition: string;
    volumes: unknown;
    successRate: number | null;
    emergencyShare: number | null;
    leadTimes: unknown;
    findings: Record<string, { changeId: string; reasons?: string[]; days?: number }[]>;
    lessonsLearned: { changeId: string; lessonsLearned: string }[];
    settings: Record<string, unknown>;
  };

  const fetchReport = async (query = 'period=2026-Q3', as: TestUser = USERS.auditor) =>
    expectStatus(await app.get<Report>(`/reports/compliance?${query}`, as), 200).body;

  it('has a quarter with something in every figure (the seed exercises the report)', () => {
    const e = expected();
    expect(e.volumes.submitted.normal).toBeGreaterThan(10);
    expect(e.volumes.submitted.standard).toBeGreaterThan(3);
    expect(e.volumes.submitted.emergency).toBeGreaterThan(3);
    expect(e.volumes.outcomes.failed + e.volumes.outcomes['rolled-back']).toBeGreaterThan(0);
    expect(e.volumes.rejected.inReview).toBeGreaterThan(0);
    expect(e.volumes.rejected.atApproval).toBeGreaterThan(0);
    expect(e.volumes.cancelled).toBeGreaterThan(0);
    expect(e.lessons.length).toBeGreaterThan(0);
    for (const [name, list] of Object.entries(e.findings)) {
      expect(`${name}: ${list.length}`).not.toBe(`${name}: 0`);
    }
  });

  it('matches the independently computed volumes, rates and lead times', async () => {
    const report = await fetchReport();
    const e = expected();
    expect(report.period).toEqual({ label: '2026-Q3', from: iso(PERIOD.from), to: iso(PERIOD.to) });
    expect(report.asOf).toBe(iso(AS_OF));
    expect(report.volumes).toEqual(e.volumes);
    expect(report.successRate).toBe(e.successRate);
    expect(report.emergencyShare).toBe(e.emergencyShare);
    expect(report.leadTimes).toEqual(e.leadTimes);
    expect(BigInt(report.readModelPosition)).toBeGreaterThan(0n);
  });

  it('names the settings its figures depend on, and nothing else of the service configuration (its secrets)', async () => {
    const answer = await app.request('GET', '/reports/compliance?period=2026-Q3', { as: USERS.auditor });
    const report = expectStatus(answer, 200).body as unknown as Report;
    expect(report.settings).toEqual({
      retrospectiveDueBusinessDays: app.config.retrospectiveDueBusinessDays,
      postImplementationReviewDueBusinessDays: app.config.postImplementationReviewDueBusinessDays,
    });
    expect(JSON.stringify(report)).not.toContain(app.config.auth.jwtSecret!);
  });

  it('matches the independently computed control findings and lessons learned', async () => {
    const report = await fetchReport();
    const e = expected();
    const f = report.findings;
    const changeIds = (key: string) => f[key].map((x) => x.changeId);
    expect(changeIds('overdueRetrospectives')).toEqual(e.findings.overdueRetrospectives);
    expect(changeIds('lateRetrospectives')).toEqual(e.findings.lateRetrospectives);
    expect(changeIds('retrospectivelyRejected')).toEqual(e.findings.retrospectivelyRejected);
    expect(changeIds('emergenciesStillAtWork')).toEqual(e.findings.emergenciesStillAtWork);
    expect(f.implementedOutsideWindow.map((x) => [x.changeId, x.reasons])).toEqual(
      e.findings.implementedOutsideWindow,
    );
    expect(changeIds('failedWithoutReview')).toEqual(e.findings.failedWithoutReview);
    expect(changeIds('succeededWithoutReview')).toEqual(e.findings.succeededWithoutReview);
    expect(e.findings.succeededWithoutReview.length).toBeGreaterThan(0);
    expect(changeIds('unnotifiedEmergencies')).toEqual(e.findings.unnotifiedEmergencies);
    expect(e.findings.unnotifiedEmergencies.length).toBeGreaterThan(0); // the check has something to find
    expect(changeIds('undocumentedImplementations')).toEqual(e.findings.undocumentedImplementations);
    expect(changeIds('failuresWithoutIssues')).toEqual(e.findings.failuresWithoutIssues);
    expect(e.findings.failuresWithoutIssues.length).toBeGreaterThan(0);
    expect(changeIds('documentationNotUpdated')).toEqual(e.findings.documentationNotUpdated);
    expect(e.findings.documentationNotUpdated.length).toBeGreaterThan(0);
    expect(changeIds('segregationOfDutiesExceptions')).toEqual(e.findings.segregationOfDutiesExceptions);
    expect(
      f.segregationOfDutiesExceptions.every((x) => (x as { rule?: string }).rule === 'requester-reviewed'),
    ).toBe(true);
    expect(f.staleInReview.map((x) => [x.changeId, x.days])).toEqual(e.findings.staleInReview);
    expect(report.lessonsLearned.map((l) => l.changeId)).toEqual(e.lessons);
  });

  it('gives the same report for the same span as from/to dates', async () => {
    const byLabel = await fetchReport();
    const byDates = await fetchReport('from=2026-07-01&to=2026-09-30');
    expect({ ...byDates, period: undefined, generatedAt: undefined }).toEqual({
      ...byLabel,
      period: undefined,
      generatedAt: undefined,
    });
  });

  it('answers CSV and HTML, and only to auditors, leads and management', async () => {
    const csv = await app.request('GET', '/reports/compliance?period=2026-Q3&format=csv', { as: USERS.lead });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const rows = (csv.body as unknown as string).split('\r\n');
    expect(rows[0]).toBe('section,metric,value,changeId,detail');
    expect(rows).toContain(`volume,submitted.total,${expected().volumes.submitted.total},,`);
    // every finding of the report (the JSON answer, checked against the plan above): its count,
    // then one row per change, in the report's order
    const json = await fetchReport();
    const findings = json.findings as unknown as Record<string, { changeId: string }[]>;
    expect(Object.keys(findings).length).toBeGreaterThan(5);
    for (const [key, list] of Object.entries(findings)) {
      expect(rows).toContain(`finding-count,${key},${list.length},,`);
      expect(rows.filter((r) => r.startsWith(`finding,${key},`)).map((r) => r.split(',')[3])).toEqual(
        list.map((x) => x.changeId),
      );
    }
    expect(rows.filter((r) => r.startsWith('finding,')).length).toBeGreaterThan(0);
    expect(rows.filter((r) => r.startsWith('lesson,lessons-learned,')).map((r) => r.split(',')[3])).toEqual(
      json.lessonsLearned.map((l) => l.changeId),
    );
    const html = await app.request('GET', '/reports/compliance?period=2026-Q3&format=html', {
      as: USERS.manager,
    });
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    for (const user of [USERS.requester, USERS.implementer, USERS.technical]) {
      expectStatus(await app.get('/reports/compliance?period=2026-Q3', user), 403, 'FORBIDDEN');
    }
    expectStatus(await app.get('/reports/compliance?period=2026-Q3', null), 401, 'UNAUTHENTICATED');
  });

  it.each([
    ['period=2026-Q5', 'period'],
    ['period=2026-Q3&from=2026-07-01', 'period'],
    ['from=2026-07-01', 'to'],
    ['from=2026-07-01&to=2026-06-01', 'to'],
    ['period=2026-Q3&format=pdf', 'format'],
    // not begun on the app's clock: it would list today's open findings under a future quarter
    ['period=2030-Q1', 'period'],
    ['from=2030-01-01&to=2030-02-01', 'from'],
  ])('refuses %s with a problem naming %s', async (query, field) => {
    const result = expectStatus(
      await app.get(`/reports/compliance?${query}`, USERS.auditor),
      400,
      'VALIDATION_FAILED',
    );
    expect((result.body as { errors: { field: string }[] }).errors.map((e) => e.field)).toContain(field);
  });

  const whenBuilt = cliBuilt && cliReachesEvents ? it : it.skip;

  whenBuilt(
    '`npm run report` writes the same report from the same read models',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'changeledger-report-'));
      try {
        const out = join(dir, 'report.json');
        // npm runs the script in the package's folder and says where it was typed in INIT_CWD
        const { stderr } = await runCli(
          app.config,
          ['report', '--period', '2026-Q3', '--format', 'json', '--out', 'report.json'],
          { INIT_CWD: dir },
        );
        expect(stderr).toContain(`written to ${out}`);
        const written = readFileSync(out, 'utf8');
        // a report is handed around: the service's secrets stay out of it
        expect(written).not.toContain(app.config.auth.jwtSecret!);
        const fromCli = JSON.parse(written) as Report & { generatedAt: string };
        expect(fromCli.settings).toEqual({
          retrospectiveDueBusinessDays: app.config.retrospectiveDueBusinessDays,
          postImplementationReviewDueBusinessDays: app.config.postImplementationReviewDueBusinessDays,
        });
        const fromApi = await fetchReport();
        expect({ ...fromCli, generatedAt: undefined }).toEqual({ ...fromApi, generatedAt: undefined });
        expect(stderr).toMatch(/report: 2026-Q3: \d+ changes submitted, \d+ findings/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );

  // The HTML report in a real browser: Debian's `chromium`, headless, as .ci/run installs it.
  const chromium = (process.env.PATH ?? '')
    .split(delimiter)
    .map((d) => join(d, 'chromium'))
    .find((p) => existsSync(p));
  // CI installs it and says so (REQUIRE_BROWSER_TESTS): there a missing browser fails, not skips.
  const withBrowser = chromium || process.env.REQUIRE_BROWSER_TESTS === 'true' ? it : it.skip;
  if (!chromium)
    console.log('compliance report browser test skipped: no `chromium` on PATH (apt-get install chromium)');

  withBrowser(
    'renders the HTML report in headless Chromium, charts drawn to scale',
    async () => {
      expect(chromium).toBeDefined();
      const dir = mkdtempSync(join(tmpdir(), 'changeledger-chromium-'));
      try {
        const html = await app.request('GET', '/reports/compliance?period=2026-Q3&format=html', {
          as: USERS.auditor,
        });
        const page = join(dir, 'report.html');
        const png = join(dir, 'report.png');
        writeFileSync(page, html.body as unknown as string);
        await run(
          chromium!,
          [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-dev-shm-usage',
            '--no-first-run',
            '--no-default-browser-check',
            '--disable-extensions',
            '--disable-background-networking',
            '--force-color-profile=srgb',
            '--force-device-scale-factor=1',
            '--hide-scrollbars',
            `--user-data-dir=${join(dir, 'profile')}`,
            '--window-size=1000,1400',
            `--screenshot=${png}`,
            `file://${page}`,
          ],
          { timeout: 60_000 },
        );
        // To look at the page and the screenshot: REPORT_ARTIFACTS_DIR=/some/dir npm run test:e2e
        if (process.env.REPORT_ARTIFACTS_DIR) {
          cpSync(page, join(process.env.REPORT_ARTIFACTS_DIR, 'compliance-report.html'));
          cpSync(png, join(process.env.REPORT_ARTIFACTS_DIR, 'compliance-report.png'));
        }
        const image = decodePng(readFileSync(png));
        expect([image.width, image.height]).toEqual([1000, 1400]);
        // Colours used only by the per-month chart: its legend square (12×12) and the bars.
        const legend = 144;
        const standard = countPixels(image, '#4c78a8') - legend;
        const normal = countPixels(image, '#f58518') - legend;
        const successful = countPixels(image, '#54a24b');
        const e = expected().volumes.submitted;
        expect(standard).toBeGreaterThan(500);
        expect(normal).toBeGreaterThan(500);
        expect(successful).toBeGreaterThan(500);
        // Bar areas are proportional to the counts they stand for.
        expect(normal / standard).toBeGreaterThan((e.normal / e.standard) * 0.9);
        expect(normal / standard).toBeLessThan((e.normal / e.standard) * 1.1);
        // And the outcome bars: the same height, widths proportional to the counts.
        const v = expected().volumes;
        const cancelled = countPixels(image, '#b279a2');
        expect(v.cancelled).toBeGreaterThan(0);
        expect(successful / cancelled).toBeGreaterThan((v.outcomes.successful / v.cancelled) * 0.9);
        expect(successful / cancelled).toBeLessThan((v.outcomes.successful / v.cancelled) * 1.1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    90_000,
  );
});
