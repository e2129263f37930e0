import {
  evolveStandardTemplate,
  initialStandardTemplateState,
  type StandardTemplateEvent,
  type StandardTemplateState,
} from '@changeledger/domain';
import type { ReadModelDocument } from '../read-model-store.port';
import { changeIdOf, type Projection, templateIdOf } from './projection';

export interface StandardTemplateDocument extends ReadModelDocument {
  readonly template: StandardTemplateState;
  readonly usageCount: number;
  readonly active: boolean;
}

/**
 * Templates with their usage counts. Usage comes from change streams, so this document is
 * fed by many streams: the position guard (not a stream revision) keeps it idempotent.
 */
export const standardTemplatesProjection: Projection<StandardTemplateDocument> = {
  collection: { name: 'standard_templates', fields: { active: 'boolean' }, indexes: [] },
  documentId: (event) => {
    const templateId = templateIdOf(event);
    if (templateId) return templateId;
    if (changeIdOf(event) && event.type === 'ChangeSubmitted') {
      return (event.data as { standardTemplate?: { id: string } }).standardTemplate?.id;
    }
    return undefined;
  },
  evolve: (doc, event) => {
    if (event.type === 'ChangeSubmitted') {
      return doc ? { ...doc, usageCount: doc.usageCount + 1 } : undefined;
    }
    const template = evolveStandardTemplate(doc?.template ?? initialStandardTemplateState(), {
      type: event.type,
      data: event.data,
    } as unknown as StandardTemplateEvent);
    return { id: template.id, template, usageCount: doc?.usageCount ?? 0, active: template.active };
  },
};

export const toTemplateView = (doc: StandardTemplateDocument) => {
  const { exists: _exists, ...template } = doc.template;
  return { ...template, usageCount: doc.usageCount };
};
