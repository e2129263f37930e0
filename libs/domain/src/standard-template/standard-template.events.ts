import type { ActorRef } from '../shared/actor';
import type { DomainEvent } from '../shared/decider';

export type StandardTemplateCreated = DomainEvent<
  'StandardTemplateCreated',
  {
    templateId: string;
    name: string;
    description: string;
    procedure: string[];
    systemsScope: string[];
    by: ActorRef;
    at: string;
  }
>;
export type StandardTemplateRetired = DomainEvent<
  'StandardTemplateRetired',
  { reason?: string; by: ActorRef; at: string }
>;

export type StandardTemplateEvent = StandardTemplateCreated | StandardTemplateRetired;

export const STANDARD_TEMPLATE_SCHEMA_VERSION = 1;
