// Jest setup of the e2e-mongodb project: the apps these tests start keep their read models in
// MongoDB (MONGODB_URL), each in a database of its own (see AppHarness).
process.env.E2E_READ_MODEL_STORE = 'mongodb';
