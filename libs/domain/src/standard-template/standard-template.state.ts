import type { ActorRef } from '../shared/actor';
import type { StandardTemplateEvent } from './standard-template.events';

export interface StandardTemplateState {
  exists: boolean;
  id: string;
  version: number;
  name: string;
  description: string;
  procedure: string[];
  systemsScope: string[];
  active: boolean;
  createdBy?: ActorRef;
  createdAt?: string;
  retiredBy?: ActorRef;
  retiredAt?: string;
  retirementReason?: string;
}

export const initialStandardTemplateState = (): StandardTemplateState => ({
  exists: false,
  id: '',
  version: 0,
  name: '',
  description: '',
  procedure: [],
  systemsScope: [],
  active: false,
});

export const evolveStandardTemplate = (
  state: StandardTemplateState,
  event: StandardTemplateEvent,
): StandardTemplateState => {
  const next = { ...state, version: state.version + 1 };
  switch (event.type) {
    case 'StandardTemplateCreated': {
      const { templateId, name, description, procedure, systemsScope, by, at } = event.data;
      return {
        ...next,
        exists: true,
        id: templateId,
        name,
        description,
        procedure,
        systemsScope,
        active: true,
        createdBy: by,
        createdAt: at,
      };
    }
    case 'StandardTemplateRetired':
      return {
        ...next,
        active: false,
        retiredBy: event.data.by,
        retiredAt: event.data.at,
        retirementReason: event.data.reason,
      };
    default: {
      const _exhaustive: never = event;
      void _exhaustive;
      return next;
    }
  }
};
