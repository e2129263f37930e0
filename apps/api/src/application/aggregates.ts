import {
  type ChangeRequestCommand,
  type ChangeRequestContext,
  changeRequestDecider,
  type ChangeRequestEvent,
  type ChangeRequestState,
  changeRequestStreamId,
  CHANGE_REQUEST_SCHEMA_VERSION,
  type Decider,
  type DecisionContext,
  formatChangeId,
  formatTemplateId,
  type StandardTemplateCommand,
  standardTemplateDecider,
  type StandardTemplateEvent,
  type StandardTemplateState,
  standardTemplateStreamId,
  STANDARD_TEMPLATE_SCHEMA_VERSION,
} from '@changeledger/domain';

/** Any aggregate whose state is S (commands, events and context do not matter to a loader). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- commands and events are invariant here
export type AnyAggregateOf<S> = AggregateDefinition<any, any, S, any>;
export type AnyAggregate = AnyAggregateOf<unknown>;
export type StateLoader = <S>(aggregate: AnyAggregateOf<S>, id: string) => Promise<S>;

/**
 * What the generic command handler needs to know about one aggregate type.
 * Adding an aggregate means adding one of these, not another handler.
 */
export interface AggregateDefinition<C, E, S, Ctx extends DecisionContext> {
  readonly name: string;
  readonly decider: Decider<C, E, S, Ctx>;
  readonly schemaVersion: number;
  readonly streamId: (id: string) => string;
  readonly version: (state: S) => number;
  readonly status?: (state: S) => string;
  /** For creation commands: the id sequence and how to put the new id into the command. */
  readonly sequence?: {
    readonly name: string;
    readonly format: (n: number) => string;
    readonly isCreation: (command: C) => boolean;
    readonly withId: (command: C, id: string) => C;
  };
  /**
   * Commands that add open-ended content (implementation steps, issues): refused once
   * the stream holds MAX_STREAM_DATA_BYTES; the others, which move it on to its end, may take it
   * up to STREAM_DATA_CEILING_BYTES (see ExecuteDecisionHandler).
   */
  readonly openEndedCommands?: ReadonlySet<string>;
  /** Extra facts a decision needs from other aggregates (read before deciding). */
  readonly context?: (command: C, base: DecisionContext, load: StateLoader) => Promise<Ctx>;
}

export const changeRequestAggregate: AggregateDefinition<
  ChangeRequestCommand,
  ChangeRequestEvent,
  ChangeRequestState,
  ChangeRequestContext
> = {
  name: 'changeRequest',
  decider: changeRequestDecider,
  // (not amendments: an emergency's request is completed by them, and its retrospective needs it)
  openEndedCommands: new Set(['RecordImplementationStep', 'RecordImplementationIssue']),
  schemaVersion: CHANGE_REQUEST_SCHEMA_VERSION,
  streamId: changeRequestStreamId,
  version: (s) => s.version,
  status: (s) => s.status,
  sequence: {
    name: 'changeRequest',
    format: formatChangeId,
    isCreation: (c) => c.type === 'SubmitChange',
    withId: (c, id) => (c.type === 'SubmitChange' ? { ...c, changeId: id } : c),
  },
  context: async (command, base, load) => {
    if (command.type === 'SubmitChange' && command.changeType === 'standard' && command.standardTemplateId) {
      return { ...base, template: await load(standardTemplateAggregate, command.standardTemplateId) };
    }
    return base;
  },
};

export const standardTemplateAggregate: AggregateDefinition<
  StandardTemplateCommand,
  StandardTemplateEvent,
  StandardTemplateState,
  DecisionContext
> = {
  name: 'standardTemplate',
  decider: standardTemplateDecider,
  schemaVersion: STANDARD_TEMPLATE_SCHEMA_VERSION,
  streamId: standardTemplateStreamId,
  version: (s) => s.version,
  status: (s) => (s.active ? 'active' : 'retired'),
  sequence: {
    name: 'standardTemplate',
    format: formatTemplateId,
    isCreation: (c) => c.type === 'CreateStandardTemplate',
    withId: (c, id) => (c.type === 'CreateStandardTemplate' ? { ...c, templateId: id } : c),
  },
};
