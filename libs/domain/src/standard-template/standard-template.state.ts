import { hasVisibleText, systemKey } from '../shared/text';
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

/**
 * Whether a scope entry names systems: a name, or a pattern of names (`*` any run of characters)
 * with a literal start or end and two or more visible characters that are not `*`. `*`, `*-*`,
 * `*e*` or `p*` match (nearly) every system: a template with one would pre-approve changes to
 * anything. Such entries are refused since 2026-11-27, and in a template stored before they
 * cover no system.
 */
export const namesSystems = (entry: string): boolean => {
  // judged as it is compared (`outsideScope`): without zero-width characters around a `*`
  const pattern = systemKey(entry);
  if (!pattern.includes('*')) return hasVisibleText(pattern);
  if (pattern.startsWith('*') && pattern.endsWith('*')) return false;
  let literal = 0;
  for (const character of pattern.replace(/\*/g, '')) if (hasVisibleText(character)) literal++;
  return literal >= 2;
};
