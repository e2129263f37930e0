// Jest setup of the e2e-eventstoredb-double project: the apps these tests start keep their events
// in the EventStoreDB adapter on the in-memory double of its client (see AppHarness).
process.env.E2E_EVENT_STORE = 'eventstoredb-double';
