import { Inject } from '@nestjs/common';
import { type IQueryHandler, QueryHandler } from '@nestjs/cqrs';
import {
  evolveStandardTemplate,
  initialStandardTemplateState,
  type StandardTemplateEvent,
  type StandardTemplateState,
} from '@changeledger/domain';
import { EVENT_STORE, type EventStore } from '@changeledger/event-store';

export class ListStandardTemplates {}

export type StandardTemplateView = Omit<StandardTemplateState, 'exists'> & { usageCount: number };

const PAGE = 2000;

/**
 * Templates with their usage counts, folded from the log. Interim: the standard-templates read
 * model replaces this scan (see the read-models issue).
 */
@QueryHandler(ListStandardTemplates)
export class ListStandardTemplatesHandler implements IQueryHandler<
  ListStandardTemplates,
  StandardTemplateView[]
> {
  constructor(@Inject(EVENT_STORE) private readonly store: EventStore) {}

  async execute(): Promise<StandardTemplateView[]> {
    const templates = new Map<string, StandardTemplateState>();
    const usage = new Map<string, number>();
    for (let after = 0n; ;) {
      const page = await this.store.readAll({ after, limit: PAGE });
      for (const event of page) {
        if (event.streamId.startsWith('standardTemplate-')) {
          const id = event.streamId.slice('standardTemplate-'.length);
          const state = templates.get(id) ?? initialStandardTemplateState();
          templates.set(
            id,
            evolveStandardTemplate(state, { type: event.type, data: event.data } as StandardTemplateEvent),
          );
        } else if (event.type === 'ChangeSubmitted') {
          const templateId = (event.data as { standardTemplate?: { id: string } }).standardTemplate?.id;
          if (templateId) usage.set(templateId, (usage.get(templateId) ?? 0) + 1);
        }
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1].position;
    }
    return [...templates.values()]
      .filter((t) => t.exists)
      .sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }))
      .map(({ exists: _exists, ...t }) => ({ ...t, usageCount: usage.get(t.id) ?? 0 }));
  }
}
