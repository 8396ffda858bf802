import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

/** The Temporal server release the production stack runs (binary, SQL tool and schema alike). */
export const temporalServerVersion = 'v1.29.1';
const serverModule = 'go.temporal.io/server';

/** The per-user tools cache that scripts/setup.mjs also uses. */
export const toolsCache = process.env.CLUSTERGUARD_TOOLS_DIR
  ? path.resolve(process.env.CLUSTERGUARD_TOOLS_DIR)
  : path.join(homedir(), '.cache', 'clusterguard', 'tools');

const say = (msg: string) => console.log(`[clusterguard] ${msg}`);

/** `name` on PATH, else in the first of `dirs` (globs) that has it. */
export async function findBinary(name: string, dirs: string[] = []): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    if (existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  for (const pattern of dirs) {
    // One `*` at most, as in /usr/lib/postgresql/*/bin; highest version first.
    const [head = '', tail = ''] = pattern.split('*');
    const parent = path.dirname(`${head}x`);
    const prefix = path.basename(`${head}x`).slice(0, -1);
    const found = pattern.includes('*')
      ? (await readdir(parent).catch(() => [] as string[]))
          .filter((d) => d.startsWith(prefix))
          .map((d) => path.join(parent, d + tail))
      : [pattern];
    for (const d of found.sort().reverse()) {
      if (existsSync(path.join(d, name))) return path.join(d, name);
    }
  }
  return undefined;
}

/** Installs a Debian package when this process may (root with apt-get); else says what to do. */
export async function ensureDebianPackage(pkg: string, what: string): Promise<void> {
  const apt = await findBinary('apt-get');
  if (!apt || process.getuid?.() !== 0) {
    throw new Error(`${what} is missing: install the ${pkg} package (apt-get install ${pkg})`);
  }
  say(`installing ${pkg} with apt-get (for ${what})…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await execa(apt, ['update', '-qq'], { env, reject: false });
  const res = await execa(apt, ['install', '-y', '-qq', pkg], { env, reject: false, all: true });
  if (res.exitCode !== 0) throw new Error(`apt-get install ${pkg} failed:\n${res.all}`);
}

async function go(): Promise<string> {
  const found = await findBinary('go', ['/usr/local/go/bin', '/usr/lib/go-*/bin']);
  if (!found) {
    throw new Error(
      'the Temporal server is built from source with Go (>= 1.24): install it (https://go.dev/dl or apt-get install golang) and run again',
    );
  }
  return found;
}

export interface ServerTools {
  /** `temporal-server`: the server itself. */
  server: string;
  /** `temporal-sql-tool`: creates and upgrades the PostgreSQL schema. */
  sqlTool: string;
  /** `schema/postgresql/v12` of the same release: `temporal/` and `visibility/`. */
  schemaDir: string;
}

/**
 * `go install` of `packages` into the tools cache's `binDir`, once: built in a staging folder and
 * renamed into place, so an interrupted build never leaves a half-written binary behind.
 */
async function goInstall(
  goBin: string,
  what: string,
  packages: string[],
  binDir: string,
  names: string[],
): Promise<void> {
  if (names.every((n) => existsSync(path.join(binDir, n)))) return;
  say(`building ${what} with go install (minutes, once per machine)…`);
  const staging = path.join(toolsCache, `.${path.basename(binDir)}-build-${process.pid}`);
  await mkdir(staging, { recursive: true });
  try {
    const res = await execa(goBin, ['install', ...packages], {
      env: { ...process.env, GOBIN: staging, CGO_ENABLED: '0' },
      reject: false,
      all: true,
    });
    if (res.exitCode !== 0) throw new Error(`go install of ${what} failed:\n${res.all}`);
    await mkdir(binDir, { recursive: true });
    for (const n of names) await rename(path.join(staging, n), path.join(binDir, n));
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** The Web UI server release: the one the `temporal` CLI v1.5.1 embeds (it builds with Go 1.24+). */
export const uiServerVersion = 'v2.42.1';

/** The Temporal Web UI server (`github.com/temporalio/ui-server/v2`), built once per machine. */
export async function ensureUiServer(): Promise<string> {
  const binDir = path.join(toolsCache, 'ui-server-bin');
  await goInstall(
    await go(),
    `the Temporal Web UI server ${uiServerVersion}`,
    [`github.com/temporalio/ui-server/v2/cmd/server@${uiServerVersion}`],
    binDir,
    ['server'],
  );
  return path.join(binDir, 'server');
}

/**
 * The Temporal server and its SQL tool, built once per machine into the tools cache
 * (`go install`, several minutes the first time), and the release's schema folder from Go's
 * module cache.
 */
export async function ensureServerTools(): Promise<ServerTools> {
  const binDir = path.join(toolsCache, 'server-bin');
  const goBin = await go();
  await goInstall(
    goBin,
    `the Temporal server ${temporalServerVersion}`,
    [
      `${serverModule}/cmd/server@${temporalServerVersion}`,
      `${serverModule}/cmd/tools/sql@${temporalServerVersion}`,
    ],
    binDir,
    ['server', 'sql'],
  );
  const server = path.join(binDir, 'server');
  const sqlTool = path.join(binDir, 'sql');
  const modCache = (await execa(goBin, ['env', 'GOMODCACHE'])).stdout.trim();
  const schemaDir = path.join(
    modCache,
    `${serverModule}@${temporalServerVersion}`,
    'schema',
    'postgresql',
    'v12',
  );
  if (!existsSync(schemaDir)) {
    await execa(goBin, ['mod', 'download', `${serverModule}@${temporalServerVersion}`], {
      env: { ...process.env, GOFLAGS: '-mod=mod' },
    });
  }
  if (!existsSync(schemaDir)) throw new Error(`the Temporal schema is missing at ${schemaDir}`);
  return { server, sqlTool, schemaDir };
}
