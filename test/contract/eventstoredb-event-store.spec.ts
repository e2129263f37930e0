/**
 * The shared EventStore contract against a real EventStoreDB (22.6 or later):
 *   docker compose up eventstoredb
 *   EVENTSTORE_CONNECTION_STRING='esdb://localhost:2113?tls=false' npx jest --selectProjects contract eventstoredb
 * The server is shared and never emptied: the suite writes only to random stream ids of its own.
 */
import { EventStoreDbEventStore } from '@changeledger/event-store';
import { eventStoreContract } from './event-store.contract';

const connectionString = process.env.EVENTSTORE_CONNECTION_STRING;

if (connectionString) {
  eventStoreContract('EventStoreDB', () => {
    const opened: EventStoreDbEventStore[] = [];
    const track = (store: EventStoreDbEventStore) => {
      opened.push(store);
      return store;
    };
    return {
      open: async () => track(await EventStoreDbEventStore.connect(connectionString)),
      // a new client on the same server: what a restarted process sees
      reopen: async () => track(await EventStoreDbEventStore.connect(connectionString)),
      cleanup: async () => {
        await Promise.all(opened.splice(0).map((store) => store.close()));
      },
    };
  });
} else {
  describe.skip('EventStore contract: EventStoreDB', () => {
    it('EVENTSTORE_CONNECTION_STRING is not set: the EventStoreDB contract suite needs a server (docker compose up eventstoredb)', () => {
      // skipped: see the name
    });
  });
}
