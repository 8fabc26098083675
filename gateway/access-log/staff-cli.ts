/**
 * Creates a gateway staff account (a privacy officer for the gateway's console):
 *
 *   GATEWAY_STAFF_PASSWORD=… tsx gateway/access-log/staff-cli.ts --database data/gateway/gateway.sqlite \
 *     --username officer1 --display-name "Gateway privacy officer" [--role privacy_officer]
 *
 * `--database` also takes the gateway's postgres:// DATABASE_URL.
 *
 * The password comes from the environment, never from the command line (it would show in `ps`).
 * Exit code 0 when created or already present, 2 on bad input.
 */
import { Command } from 'commander';
import { AppError } from '../../shared/platform/errors.ts';
import { seedGatewayStaff } from './staff.ts';

const program = new Command('gateway-staff')
  .requiredOption('--database <file or url>', 'the gateway\'s SQLite file or postgres:// URL')
  .requiredOption('--username <name>', 'login name')
  .option('--display-name <text>', 'name shown in the console', 'Gateway privacy officer')
  .option('--role <role>', 'privacy_officer or admin', 'privacy_officer')
  .action(async (o: { database: string; username: string; displayName: string; role: string }) => {
    const password = process.env.GATEWAY_STAFF_PASSWORD ?? '';
    try {
      const created = await seedGatewayStaff(/^postgres(ql)?:\/\//.test(o.database) ? { url: o.database } : { storage: o.database }, [{ username: o.username, displayName: o.displayName, role: o.role, password }]);
      console.log(created.length ? `created ${o.username} (${o.role})` : `${o.username} already exists; left unchanged`);
    } catch (err) {
      console.error(err instanceof AppError
        ? `${err.extra.field === 'password' ? 'GATEWAY_STAFF_PASSWORD' : err.extra.field}: ${err.extra.rule}`
        : (err as Error).message);
      process.exitCode = 2;
    }
  });

await program.parseAsync(process.argv);
