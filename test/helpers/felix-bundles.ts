import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../../src/process.js';

/** The real bundles of test/fixtures/felix-bundles, one jar each. */
export interface GreeterBundles {
  api: string;
  /** com.example.greeter.provider 1.0.0 */
  provider: string;
  /** the same source as 1.1.0 */
  provider11: string;
  /** 1.2.0, whose DS component throws on activation */
  providerBroken: string;
  consumer: string;
  /** imports a package that no bundle exports */
  unresolvable: string;
}

const modules: Record<keyof GreeterBundles, string> = {
  api: 'api',
  provider: 'provider',
  provider11: 'provider-1.1',
  providerBroken: 'provider-broken',
  consumer: 'consumer',
  unresolvable: 'unresolvable',
};

async function sourceHash(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    const entries = (await readdir(d, { withFileTypes: true })).sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    for (const e of entries) {
      if (e.name === 'target') continue;
      const full = path.join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else hash.update(`${path.relative(dir, full)}\0`).update(await readFile(full));
    }
  };
  await walk(dir);
  return hash.digest('hex').slice(0, 10);
}

/**
 * Builds the test bundles with one multi-module Maven run, once per source hash, into the tools
 * cache (where setup keeps the Felix jars): later runs, and other checkouts, reuse the jars, and
 * Maven works offline once its plugins are in the local repository.
 */
export async function greeterBundles(): Promise<GreeterBundles> {
  const project = path.join(repoRoot, 'test', 'fixtures', 'felix-bundles');
  const cache = process.env.CLUSTERGUARD_TOOLS_DIR
    ? path.resolve(process.env.CLUSTERGUARD_TOOLS_DIR)
    : path.join(os.homedir(), '.cache', 'clusterguard', 'tools');
  const home = path.join(cache, `felix-test-bundles-${await sourceHash(project)}`);
  const jars = Object.fromEntries(
    Object.entries(modules).map(([k, m]) => [k, path.join(home, `${m}.jar`)]),
  ) as unknown as GreeterBundles;
  if (existsSync(path.join(home, '.complete'))) return jars;
  const staging = `${home}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const r = await execa(
    'mvn',
    ['-q', '-B', '-f', path.join(project, 'pom.xml'), `-DoutputRoot=${staging}/target`, 'package'],
    { reject: false, all: true },
  );
  if (r.exitCode !== 0) {
    throw new Error(`Maven could not build the test bundles: ${String(r.all).slice(-2000)}`);
  }
  for (const m of Object.values(modules)) {
    await copyFile(path.join(staging, 'target', m, `${m}.jar`), path.join(staging, `${m}.jar`));
  }
  await rm(path.join(staging, 'target'), { recursive: true, force: true });
  await writeFile(path.join(staging, '.complete'), '');
  await rm(home, { recursive: true, force: true });
  await rename(staging, home);
  return jars;
}
