/**
 * The shared EventStore contract against the EventStoreDB adapter on the in-memory double of
 * its client: no server can be installed here, so this is what CI proves of the adapter against
 * the contract (the double models the server behaviour the adapter relies on, as read in the
 * server's source; see its header). Against a real server: eventstoredb-event-store.spec.ts.
 */
import { EventStoreDbEventStore } from '@changeledger/event-store';
import { InMemoryEventStoreDbClient } from '../../libs/event-store/src/adapters/eventstoredb/testing/in-memory-eventstoredb-client';
import { eventStoreContract } from './event-store.contract';

eventStoreContract('EventStoreDB adapter on the client double', () => {
  let server = new InMemoryEventStoreDbClient();
  const opened: EventStoreDbEventStore[] = [];
  const quiet = { error: () => undefined, warn: () => undefined };
  const open = () => {
    const store = new EventStoreDbEventStore(server.connection(), { logger: quiet });
    opened.push(store);
    return store;
  };
  return {
    open: async () => {
      server = new InMemoryEventStoreDbClient();
      return open();
    },
    // a new client on the same server: what a restarted process sees
    reopen: async () => open(),
    cleanup: async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    },
  };
});
