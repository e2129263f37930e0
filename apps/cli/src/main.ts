import { parseArgs } from 'node:util';
import { ROLES } from '@changeledger/domain';
import { verifyHashChains } from '@changeledger/event-store';
import { allProjections, rebuildReadModels } from '@changeledger/read-models';
import {
  loadConfig,
  openEventStore,
  openReadModelStore,
  resolveJwtSecret,
  signToken,
} from '@changeledger/platform';
import { ProgressBar } from './progress-bar';

const USAGE = `usage: npm run token -- --sub ID --name NAME --roles role1,role2 [--expires 12h]
roles: ${ROLES.join(', ')}`;

/** `token`: prints an HS256 token signed with the configured (or generated) secret. */
const token = async (args: string[]) => {
  const { values } = parseArgs({
    args,
    options: {
      sub: { type: 'string' },
      name: { type: 'string' },
      roles: { type: 'string' },
      expires: { type: 'string', default: '12h' },
    },
  });
  if (!values.sub || !values.name || !values.roles) throw new Error(USAGE);
  const roles = values.roles
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
  const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length > 0) throw new Error(`unknown role(s): ${unknown.join(', ')}\n${USAGE}`);
  const config = loadConfig();
  const secret = resolveJwtSecret(config.auth.jwtSecret, config.dataDir);
  process.stdout.write(
    `${await signToken({ sub: values.sub, name: values.name, roles }, secret, {
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      expiresIn: values.expires,
    })}\n`,
  );
};

/**
 * `rebuild`: replays the whole log into fresh read models next to the live ones, then swaps
 * them in at once, so clients never see a half-built model.
 */
const rebuild = async () => {
  const config = loadConfig();
  const events = await openEventStore(config);
  const live = await openReadModelStore(config);
  const bar = new ProgressBar('rebuild', 'events');
  const started = Date.now();
  try {
    const projections = allProjections(config);
    // Positions need not be dense: progress is measured in log positions, the rate in events.
    const result = await rebuildReadModels(events, live, projections, (p) =>
      bar.update(p.events, Number(p.position), Number(p.head)),
    );
    bar.done(
      `${result.events} events into ${projections.length} read models in ${((Date.now() - started) / 1000).toFixed(1)} s; swapped in`,
    );
  } finally {
    await live.close();
    await events.close();
  }
};

/** `audit:verify`: checks every stream's hash chain; exits 1 and names the first broken event. */
const verify = async () => {
  const config = loadConfig();
  const events = await openEventStore(config);
  const bar = new ProgressBar('verify', 'events');
  try {
    const report = await verifyHashChains(events, {
      onProgress: (checked, position, head) => bar.update(checked, Number(position), Number(head)),
    });
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (report.valid) {
      bar.done(
        `${report.checkedEvents} events in ${report.checkedStreams} streams: every hash chain is intact`,
      );
    } else {
      const f = report.firstInvalid!;
      bar.done(`BROKEN at ${f.streamId} revision ${f.revision} (position ${f.position}): ${f.reason}`);
      process.exitCode = 1;
    }
  } finally {
    await events.close();
  }
};

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = { token, rebuild, verify };

const main = async () => {
  const [command, ...args] = process.argv.slice(2);
  const run = command ? COMMANDS[command] : undefined;
  if (!run) throw new Error(`usage: changeledger <${Object.keys(COMMANDS).join('|')}> [options]`);
  await run(args);
};

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
