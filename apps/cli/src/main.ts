import { parseArgs } from 'node:util';
import { ROLES } from '@changeledger/domain';
import { loadConfig, resolveJwtSecret, signToken } from '@changeledger/platform';

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

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = { token };

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
