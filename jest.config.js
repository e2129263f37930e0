/** Three projects: fast pure unit tests, one contract suite per port adapter, end-to-end over HTTP. */

// The e2e suite on a real server runs only where one is given: said once, not left out in silence.
/** The projects named by --selectProjects (both forms), or undefined: all. */
const selectedProjects = (() => {
  const names = [];
  let named = false;
  for (let i = 0; i < process.argv.length; i++) {
    const [flag, value] = process.argv[i].split(/=(.*)/s);
    if (flag !== '--selectProjects' && flag !== '--select-projects') continue;
    named = true;
    if (value !== undefined) names.push(value);
    // as jest's parser does, the names that follow too (`--selectProjects=e2e e2e-mongodb`)
    while (process.argv[i + 1] !== undefined && !process.argv[i + 1].startsWith('-'))
      names.push(process.argv[++i]);
  }
  return named ? names : undefined;
})();
for (const [variable, project, about] of [
  ['MONGODB_URL', 'e2e-mongodb', 'the e2e suite with the read models in MongoDB'],
  ['EVENTSTORE_CONNECTION_STRING', 'e2e-eventstoredb', 'the e2e suite on a real EventStoreDB'],
]) {
  const asked = selectedProjects === undefined || selectedProjects.includes(project);
  if (asked && !process.env[variable])
    process.stderr.write(`${project} (${about}) not run: ${variable} is not set\n`);
}
const swc = [
  '@swc/jest',
  {
    jsc: {
      target: 'es2022',
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      keepClassNames: true,
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];
const moduleNameMapper = {
  '^@changeledger/(domain|event-store|read-models|platform|webhooks)$': '<rootDir>/libs/$1/src',
};
const base = {
  rootDir: __dirname,
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper,
  testEnvironment: 'node',
};
// End-to-end tests make many real HTTP round trips; on FerretDB under load 5 s is too tight.
const e2e = { ...base, testMatch: ['<rootDir>/test/e2e/**/*.spec.ts'], testTimeout: 30_000 };
module.exports = {
  // Jest reads testTimeout globally, not per project: 30 s for the real-server suites on 2 cores.
  testTimeout: 30_000,
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs}/**/*.spec.ts'] },
    {
      ...base,
      displayName: 'contract',
      testMatch: ['<rootDir>/test/contract/**/*.spec.ts'],
      testTimeout: 30_000,
    },
    { ...e2e, displayName: 'e2e' },
    // The same end-to-end suite with the events in the EventStoreDB adapter on its client double.
    {
      ...e2e,
      displayName: 'e2e-eventstoredb-double',
      setupFiles: ['<rootDir>/test/e2e/support/use-eventstoredb-double.ts'],
    },
    // The same end-to-end suite with the read models in MongoDB, whenever a server is given.
    ...(process.env.MONGODB_URL
      ? [{ ...e2e, displayName: 'e2e-mongodb', setupFiles: ['<rootDir>/test/e2e/support/use-mongodb.ts'] }]
      : []),
    // And with the events in EventStoreDB, whenever a server is given.
    ...(process.env.EVENTSTORE_CONNECTION_STRING
      ? [
          {
            ...e2e,
            displayName: 'e2e-eventstoredb',
            setupFiles: ['<rootDir>/test/e2e/support/use-eventstoredb.ts'],
          },
        ]
      : []),
  ],
};
