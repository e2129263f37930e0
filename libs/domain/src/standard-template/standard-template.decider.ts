import { type Role, actorRef, hasAnyRole } from '../shared/actor';
import type { Decider, DecisionContext } from '../shared/decider';
import { forbidden, invalidState, notFound } from '../shared/domain-error';
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
    case 'CreateStandardTemplate':
      if (state.exists) throw invalidState(`template ${state.id} already exists`);
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

export const standardTemplateStreamId = (templateId: string) => `standardTemplate-${templateId}`;
export const formatTemplateId = (n: number) => `STD-${String(n).padStart(3, '0')}`;
