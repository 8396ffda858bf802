import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { execa } from 'execa';
import { ensureDebianPackage, findBinary } from './tools.js';

export interface PostgresOptions {
  /** Holds `pgdata/`, the server log and the password file. */
  dir: string;
  host: string;
  port: number;
  /** The superuser the Temporal server and its schema tool use. */
  user?: string;
}

export interface RunningPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  stop(): Promise<void>;
}

/** `--version`-less lookup: Debian keeps the server binaries out of PATH. */
async function pgBinary(name: string): Promise<string> {
  const found = await findBinary(name, ['/usr/lib/postgresql/*/bin']);
  if (found) return found;
  await ensureDebianPackage('postgresql', `${name} (PostgreSQL)`);
  const after = await findBinary(name, ['/usr/lib/postgresql/*/bin']);
  if (!after) throw new Error(`${name} is not installed: install PostgreSQL >= 12 and run again`);
  return after;
}

/**
 * PostgreSQL refuses to run as root: under root it runs as the `postgres` user (else `nobody`),
 * which then owns the data folder.
 */
async function runAsUser(): Promise<{ name: string; uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    const res = await execa('id', ['-u', name], { reject: false });
    if (res.exitCode !== 0) continue;
    const gid = Number((await execa('id', ['-g', name])).stdout.trim());
    return { name, uid: Number(res.stdout.trim()), gid };
  }
  throw new Error(
    'running as root, but neither a postgres nor a nobody user exists to run PostgreSQL',
  );
}

/**
 * Starts (initialising on first use) a PostgreSQL server for the Temporal server: its data under
 * `dir`, listening on `host:port` only (no Unix socket), password authentication for one user.
 * A server already running on that folder is reused.
 */
export async function startPostgres(options: PostgresOptions): Promise<RunningPostgres> {
  const user = options.user ?? 'temporal';
  const pgdata = path.join(options.dir, 'pgdata');
  const passwordFile = path.join(options.dir, 'password');
  const logFile = path.join(options.dir, 'postgres.log');
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  const runAs = await runAsUser();
  const wrap = (bin: string, args: string[]): [string, string[]] =>
    runAs ? ['runuser', ['-u', runAs.name, '--', bin, ...args]] : [bin, args];
  const run = (bin: string, args: string[]) => {
    const [cmd, argv] = wrap(bin, args);
    return execa(cmd, argv, { cwd: options.dir, all: true });
  };
  const owned = async (file: string) => {
    if (runAs) await chown(file, runAs.uid, runAs.gid);
  };
  await owned(options.dir);

  if (!existsSync(passwordFile)) {
    await writeFile(passwordFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  }
  await owned(passwordFile);
  const password = (await readFile(passwordFile, 'utf8')).trim();

  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) {
    await run(await pgBinary('initdb'), [
      '-D',
      pgdata,
      '-U',
      user,
      `--pwfile=${passwordFile}`,
      '--auth=scram-sha-256',
      '-E',
      'UTF8',
      '--locale=C',
    ]).catch((err: { all?: string; message: string }) => {
      throw new Error(`initdb failed: ${err.all ?? err.message}`);
    });
  }
  const pgCtl = await pgBinary('pg_ctl');
  const [statusCmd, statusArgs] = wrap(pgCtl, ['-D', pgdata, 'status']);
  const status = await execa(statusCmd, statusArgs, { reject: false });
  if (status.exitCode !== 0) {
    if (!existsSync(logFile)) await writeFile(logFile, '');
    await chmod(logFile, 0o600);
    await owned(logFile);
    await run(pgCtl, [
      '-D',
      pgdata,
      '-l',
      logFile,
      '-w',
      '-t',
      '60',
      '-o',
      `-c listen_addresses=${options.host} -p ${options.port} -c unix_socket_directories='' ` +
        '-c max_connections=200 -c shared_buffers=64MB',
      'start',
    ]).catch(async (err: { all?: string; message: string }) => {
      const tail = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-15);
      throw new Error(
        `PostgreSQL did not start on ${options.host}:${options.port}: ${err.all ?? err.message}\n${tail.join('\n')}`,
      );
    });
  }
  return {
    host: options.host,
    port: options.port,
    user,
    password,
    async stop() {
      const [cmd, args] = wrap(pgCtl, ['-D', pgdata, '-m', 'fast', '-w', 'stop']);
      await execa(cmd, args, { reject: false });
    },
  };
}
