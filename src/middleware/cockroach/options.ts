import { z } from 'zod';
import { ClusterGuardError } from '../../contracts/errors.js';
import { describeZodError } from '../../contracts/validation.js';

/** CockroachDB's own default, and what decommissioning must preserve. */
export const REPLICATION_FACTOR = 3;

// Unquoted SQL identifiers fold to lower case; allowing only these avoids a database that the
// operator typed as `UAA` existing as `uaa` under another spelling.
const sqlIdentifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'lower-case letters, digits and _, not starting with a digit');
// Values of --cache / --max-sql-memory: `256MiB`, `1GB`, `.25`, `25%`.
const memorySize = z
  .string()
  .regex(/^(\d+(\.\d+)?|\.\d+)(%|[KMGT]i?B)?$/i, 'a size such as 256MiB, 1GB, .25 or 25%');
const port = z.number().int().min(1).max(65535);

export const cockroachDatabaseSchema = z.object({
  name: sqlIdentifier,
  username: sqlIdentifier,
  password: z.string().min(1),
});
export type CockroachDatabase = z.infer<typeof cockroachDatabaseSchema>;

export const cockroachOptionsSchema = z
  .object({
    sqlPort: port.default(26257),
    httpPort: port.default(8080),
    // Bounded by default: the appliance shares its memory with ZooKeeper, Kafka and the
    // controller, so CockroachDB's "25 % of RAM each" recommendation does not apply.
    cache: memorySize.default('256MiB'),
    maxSqlMemory: memorySize.default('256MiB'),
    insecure: z.boolean().default(false),
    databases: z.array(cockroachDatabaseSchema).default([]),
  })
  .superRefine((o, ctx) => {
    if (o.sqlPort === o.httpPort) {
      ctx.addIssue({ code: 'custom', message: `sqlPort and httpPort are both ${o.sqlPort}` });
    }
    const names = o.databases.map((d) => d.name);
    for (const dup of names.filter((n, i) => names.indexOf(n) !== i)) {
      ctx.addIssue({ code: 'custom', message: `database ${dup} is configured twice` });
    }
  });
export type CockroachOptions = z.infer<typeof cockroachOptionsSchema>;

/** Validates the agent's CockroachDB options; the message names the field, never a password. */
export function parseCockroachOptions(
  options: Partial<CockroachOptions> | undefined,
): CockroachOptions {
  const parsed = cockroachOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    throw new ClusterGuardError(
      'InvalidConfig',
      `invalid CockroachDB options: ${describeZodError(parsed.error)}`,
    );
  }
  return parsed.data;
}
