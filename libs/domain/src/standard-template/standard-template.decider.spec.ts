/**
 * Given/when/then tests of the standard-template decider (contract: "Standard change templates").
 */
import { type Actor, type Role, ROLES } from '../shared/actor';
import { fold } from '../shared/decider';
import { DomainError, type DomainErrorCode } from '../shared/domain-error';
import type { CreateStandardTemplate, StandardTemplateCommand } from './standard-template.commands';
import { standardTemplateDecider } from './standard-template.decider';
import type { StandardTemplateEvent } from './standard-template.events';

const T0 = '2026-01-05T09:00:00.000Z';
const NOW = '2026-01-06T10:00:00.000Z';

const lena: Actor = { id: 'u-lena', name: 'Lena Lead', roles: ['infrastructure-lead'] };
const max: Actor = { id: 'u-max', name: 'Max Management', roles: ['management'] };
const ref = (actor: Actor) => ({ id: actor.id, name: actor.name });

// ---------------------------------------------------------------------------------------------
// given / when / then

type Refusal = Pick<DomainError, 'code' | 'detail' | 'rule' | 'errors'>;
type Outcome = { events: StandardTemplateEvent[] } | { error: Refusal };

const given = (history: readonly StandardTemplateEvent[]) => {
  const state = fold(standardTemplateDecider.evolve, standardTemplateDecider.initialState(), history);
  return {
    state,
    when: (command: StandardTemplateCommand, context: { actor: Actor; now?: string }) => {
      const attempt = (): Outcome => {
        try {
          const events = standardTemplateDecider.decide(command, state, { now: NOW, ...context });
          return { events: events.map(({ type, data }) => ({ type, data }) as StandardTemplateEvent) };
        } catch (error) {
          if (error instanceof DomainError) {
            const { code, detail, rule, errors } = error;
            return { error: { code, detail, rule, errors } };
          }
          throw error;
        }
      };
      return {
        then: (expected: readonly StandardTemplateEvent[]) => {
          const outcome = attempt();
          expect(outcome).toEqual({ events: expected });
          return given([...history, ...(outcome as { events: StandardTemplateEvent[] }).events]).state;
        },
        /** Refused with this code, and a detail matching `detail` if given. */
        thenError: (code: DomainErrorCode, detail?: RegExp): Refusal => {
          const outcome = attempt();
          expect(outcome).toMatchObject({
            error: { code, ...(detail ? { detail: expect.stringMatching(detail) } : {}) },
          });
          return (outcome as { error: Refusal }).error;
        },
      };
    },
  };
};

// ---------------------------------------------------------------------------------------------

const MANAGED_BY = /standard templates are managed by the infrastructure lead or management/;

const create: CreateStandardTemplate = {
  type: 'CreateStandardTemplate',
  templateId: 'STD-001',
  name: 'LXC container deployment',
  description: 'Deploy an LXC container from the golden image',
  procedure: ['Clone the golden image', 'Set resources', 'Register in monitoring'],
  systemsScope: ['pve-node-01', 'pve-node-02'],
};

const created = (by: Actor = lena, at = T0): StandardTemplateEvent => ({
  type: 'StandardTemplateCreated',
  data: {
    templateId: create.templateId,
    name: create.name,
    description: create.description,
    procedure: create.procedure,
    systemsScope: create.systemsScope,
    by: ref(by),
    at,
  },
});

const retired = (by: Actor = lena, reason?: string, at = T0): StandardTemplateEvent => ({
  type: 'StandardTemplateRetired',
  data: { reason, by: ref(by), at },
});

const OWNERS: readonly Role[] = ['infrastructure-lead', 'management'];
const NON_OWNER_ROLES = ROLES.filter((role) => !OWNERS.includes(role));
const holding = (...roles: Role[]): Actor => ({ id: 'u-other', name: 'Someone Else', roles });

describe('standard-template decider', () => {
  describe('create', () => {
    it.each<[string, Actor]>([
      ['the infrastructure lead', lena],
      ['management', max],
    ])('by %s → StandardTemplateCreated (active)', (_name, actor) => {
      const state = given([])
        .when(create, { actor })
        .then([created(actor, NOW)]);
      expect(state).toMatchObject({
        exists: true,
        id: 'STD-001',
        active: true,
        version: 1,
        name: create.name,
      });
    });

    it.each([
      [['*']],
      [['pve-node-01', '**']],
      [[' * ']],
      [['*-*']],
      [['pve-node-01', '*e*']],
      [['p*']],
      [['\u200b*']],
      [['\u200b*db*\u200b']],
      [['\u00ad*-*\u200d']],
    ])(
      'with a scope entry that matches (nearly) every system (%j) → VALIDATION_FAILED naming it',
      (systemsScope) => {
        const error = given([])
          .when({ ...create, systemsScope }, { actor: lena })
          .thenError('VALIDATION_FAILED');
        expect(error).toMatchObject({ rule: 'template-scope-names-systems' });
        expect(error.errors?.map((e) => e.field)).toEqual([`systemsScope.${systemsScope.length - 1}`]);
      },
    );

    it('with a pattern of names (pve-node-*) → created', () => {
      given([])
        .when({ ...create, systemsScope: ['pve-node-*', '*-prod', 'vm*'] }, { actor: lena })
        .then([
          {
            ...created(lena, NOW),
            data: { ...created(lena, NOW).data, systemsScope: ['pve-node-*', '*-prod', 'vm*'] },
          },
        ] as StandardTemplateEvent[]);
    });

    it.each(NON_OWNER_ROLES)('by someone with only the role %s → FORBIDDEN', (role) => {
      given([])
        .when(create, { actor: holding(role) })
        .thenError('FORBIDDEN', MANAGED_BY);
    });

    it('by someone with every other role → FORBIDDEN', () => {
      given([])
        .when(create, { actor: holding(...NON_OWNER_ROLES) })
        .thenError('FORBIDDEN', MANAGED_BY);
    });

    it('by someone without any role → FORBIDDEN', () => {
      given([]).when(create, { actor: holding() }).thenError('FORBIDDEN', MANAGED_BY);
    });

    it('a template that already exists → INVALID_STATE', () => {
      given([created()])
        .when(create, { actor: max })
        .thenError('INVALID_STATE', /STD-001 already exists/);
    });

    it('a template that exists, retired → INVALID_STATE (its id is not taken again)', () => {
      given([created(), retired()])
        .when(create, { actor: max })
        .thenError('INVALID_STATE', /STD-001 already exists/);
    });
  });

  describe('retire', () => {
    it.each<[string, Actor]>([
      ['the infrastructure lead', lena],
      ['management', max],
    ])('by %s → StandardTemplateRetired (no longer active)', (_name, actor) => {
      const state = given([created()])
        .when({ type: 'RetireStandardTemplate', reason: 'Replaced by the VM template' }, { actor })
        .then([retired(actor, 'Replaced by the VM template', NOW)]);
      expect(state).toMatchObject({
        exists: true,
        active: false,
        version: 2,
        retirementReason: 'Replaced by the VM template',
      });
    });

    it('without a reason', () => {
      given([created()])
        .when({ type: 'RetireStandardTemplate' }, { actor: lena })
        .then([retired(lena, undefined, NOW)]);
    });

    it('twice → INVALID_STATE', () => {
      given([created(), retired()])
        .when({ type: 'RetireStandardTemplate' }, { actor: max })
        .thenError('INVALID_STATE', /STD-001 is already retired/);
    });

    it('a template that does not exist → NOT_FOUND', () => {
      given([])
        .when({ type: 'RetireStandardTemplate' }, { actor: lena })
        .thenError('NOT_FOUND', /no such standard template/);
    });

    it.each(NON_OWNER_ROLES)('by someone with only the role %s → FORBIDDEN', (role) => {
      given([created()])
        .when({ type: 'RetireStandardTemplate' }, { actor: holding(role) })
        .thenError('FORBIDDEN', MANAGED_BY);
    });
  });
});
