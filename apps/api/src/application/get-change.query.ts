import { type IQueryHandler, QueryHandler } from '@nestjs/cqrs';
import { type Actor, type ChangeView, toChangeView } from '@changeledger/domain';
import { changeRequestAggregate } from './aggregates';
import { AggregateLoader } from './aggregate-loader';

export class GetChange {
  constructor(
    readonly id: string,
    readonly actor: Actor,
  ) {}
}

/** Folds the change from its stream (the change-requests read model replaces this later). */
@QueryHandler(GetChange)
export class GetChangeHandler implements IQueryHandler<GetChange, ChangeView | undefined> {
  constructor(private readonly loader: AggregateLoader) {}

  async execute({ id }: GetChange): Promise<ChangeView | undefined> {
    const state = await this.loader.load(changeRequestAggregate, id);
    return state.exists ? toChangeView(state) : undefined;
  }
}
