/**
 * Creates a member's own PostgreSQL database and its own login role, and prints the member's
 * DATABASE_URL. Each member gets a database that only its role can connect to (CONNECT is revoked
 * from PUBLIC), so one municipality's credentials cannot read another's tables, as with separate
 * SQLite files. Run with an administrative role that has CREATEDB and CREATEROLE:
 *
 *   npm run db:provision -- --admin-url postgres://admin:…@127.0.0.1:5432/postgres --member 293610 --member gateway
 *   … --member 293610=TAWARAMOTO_DB_PASSWORD        (password from that environment variable: compose)
 *
 * Running it again for the same member keeps the database and sets the password again.
 * The members then create their tables themselves (migrations run at start).
 */
import { randomBytes } from 'node:crypto';
import { Command } from 'commander';
import pg from 'pg';
import { isMainModule } from '../shared/platform/main-module.ts';

/** The role and database name of a member: lower-case letters, digits and underscores only. */
export function memberDatabaseName(prefix: string, member: string): string {
  const name = `${prefix}_${member}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a usable database name: ${name}`);
  return name;
}

/**
 * The statements that give `name` its own role and database, one per element (CREATE DATABASE
 * cannot run inside a transaction block). `adminRole` is made a member of the new role: before
 * PostgreSQL 16, that is what lets a CREATEROLE administrator create a database owned by it.
 */
export function provisionStatements(name: string, password: string, adminRole: string, exists: { role: boolean; database: boolean }): string[] {
  const literal = `'${password.replace(/'/g, "''")}'`;
  return [
    exists.role
      ? `ALTER ROLE ${name} WITH LOGIN PASSWORD ${literal}`
      : `CREATE ROLE ${name} WITH LOGIN PASSWORD ${literal} NOSUPERUSER NOCREATEDB NOCREATEROLE`,
    `GRANT ${name} TO ${adminRole}`,
    ...(exists.database ? [] : [`CREATE DATABASE ${name} OWNER ${name} ENCODING 'UTF8'`]),
    `REVOKE ALL ON DATABASE ${name} FROM PUBLIC`,
    `GRANT CONNECT, TEMPORARY ON DATABASE ${name} TO ${name}`,
  ];
}

/** The member's connection URL: the admin URL's host and port, the member's role, password and database. */
export function memberUrl(adminUrl: string, name: string, password: string): string {
  const url = new URL(adminUrl);
  url.username = name;
  url.password = password;
  url.pathname = `/${name}`;
  return url.toString();
}

export async function provisionMemberDatabase(adminUrl: string, name: string, password = randomBytes(24).toString('hex')): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const admin = (await client.query<{ current_user: string }>('SELECT current_user')).rows[0]!.current_user;
    const role = (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1;
    const database = (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
    for (const sql of provisionStatements(name, password, admin, { role, database })) await client.query(sql);
    return memberUrl(adminUrl, name, password);
  } finally {
    await client.end();
  }
}

if (isMainModule(import.meta.url)) {
  const program = new Command('db-provision')
    .requiredOption('--admin-url <url>', 'postgres:// URL of a role with CREATEDB and CREATEROLE (or env DATABASE_ADMIN_URL)', process.env.DATABASE_ADMIN_URL)
    .requiredOption('--member <spec>', 'member id (a municipality code, gateway or issuer), repeatable; id=NAME reads its password from env NAME instead of generating one', (v: string, all: string[] = []) => [...all, v])
    .option('--prefix <text>', 'prefix of the role and database name', 'hikitsugi')
    .action(async (o: { adminUrl: string; member: string[]; prefix: string }) => {
      for (const spec of o.member) {
        const [member, passwordEnv] = spec.split('=');
        const given = passwordEnv ? process.env[passwordEnv] : undefined;
        if (passwordEnv && !given) throw new Error(`${passwordEnv} is not set`);
        const url = await provisionMemberDatabase(o.adminUrl, memberDatabaseName(o.prefix, member!), given);
        // A password the operator gave is not echoed; a generated one is printed once, in the URL.
        console.log(`${member} DATABASE_URL=${given ? url.replace(/:[^:@/]*@/, ':***@') : url}`);
      }
    });
  // No top-level await: the test fixtures import this file, and a mocha worker may load it as CommonJS.
  program.parseAsync(process.argv).catch((err: Error) => {
    console.error(err.message);
    process.exitCode = 1;
  });
}
