// Jest setup of the e2e-eventstoredb project: the apps these tests start keep their events in
// EventStoreDB (EVENTSTORE_CONNECTION_STRING). Use a scratch server: the tests write to it.
process.env.E2E_EVENT_STORE = 'eventstoredb';
