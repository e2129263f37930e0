import { type Role, actorRef, hasAnyRole } from '../shared/actor';
import type { Decider, DecisionContext } from '../shared/decider';
import { forbidden, invalidState, notFound, validationFailed } from '../shared/domain-error';
import { namesSystems } from './standard-template.state';
import type { StandardTemplateCommand } from './standard-template.commands';
import type { StandardTemplateEvent } from './standard-template.events';
import {
  type StandardTemplateState,
  evolveStandardTemplate,
  initialStandardTemplateState,
} from './standard-template.state';

const TEMPLATE_OWNERS: readonly Role[] = ['infrastructure-lead', 'management'];

const decideStandardTemplate = (
  command: StandardTemplateCommand,
  state: StandardTemplateState,
  { actor, now }: DecisionContext,
): StandardTemplateEvent[] => {
  if (!hasAnyRole(actor, TEMPLATE_OWNERS)) {
    throw forbidden('standard templates are managed by the infrastructure lead or management');
  }
  const by = actorRef(actor);
  switch (command.type) {
    case 'CreateStandardTemplate': {
      if (state.exists) throw invalidState(`template ${state.id} already exists`);
      // A template pre-approves its changes: a scope entry that matches (nearly) any system would
      // let whoever holds it and the requester role approve their own change to anything.
      const unbounded = command.systemsScope.flatMap((entry, index) => (namesSystems(entry) ? [] : [index]));
      if (unbounded.length > 0) {
        throw validationFailed(
          'a standard template’s scope names systems or patterns of their names (pve-node-*, *-prod), not (nearly) every system',
          'template-scope-names-systems',
          unbounded.map((index) => ({
            field: `systemsScope.${index}`,
            message:
              'must name a system, or a pattern anchored at one end with two or more characters of the name',
          })),
        );
      }
      return [
        {
          type: 'StandardTemplateCreated',
          data: {
            templateId: command.templateId,
            name: command.name,
            description: command.description,
            procedure: command.procedure,
            systemsScope: command.systemsScope,
            by,
            at: now,
          },
        },
      ];
    }
    case 'RetireStandardTemplate':
      if (!state.exists) throw notFound('no such standard template');
      if (!state.active) throw invalidState(`template ${state.id} is already retired`);
      return [{ type: 'StandardTemplateRetired', data: { reason: command.reason, by, at: now } }];
    default: {
      const _exhaustive: never = command;
      return _exhaustive;
    }
  }
};

export const standardTemplateDecider: Decider<
  StandardTemplateCommand,
  StandardTemplateEvent,
  StandardTemplateState,
  DecisionContext
> = {
  initialState: initialStandardTemplateState,
  decide: decideStandardTemplate,
  evolve: evolveStandardTemplate,
};

/** The stream category of standard-change templates: `standardTemplate-STD-001`. */
export const STANDARD_TEMPLATE_STREAM_PREFIX = 'standardTemplate-';
export const standardTemplateStreamId = (templateId: string) =>
  `${STANDARD_TEMPLATE_STREAM_PREFIX}${templateId}`;
export const formatTemplateId = (n: number) => `STD-${String(n).padStart(3, '0')}`;
