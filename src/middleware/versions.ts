import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import type { MiddlewareBinary } from '../contracts/ping.js';
import { middlewareNames, type MiddlewareName } from '../config/layout.js';

/** Jar names that carry a middleware's version (Maven Central artifacts). */
const jarPatterns: Partial<Record<MiddlewareName, RegExp>> = {
  zookeeper: /^zookeeper-(\d+\.\d+\.\d+)\.jar$/,
  kafka: /^kafka_\d+\.\d+-(\d+\.\d+\.\d+)\.jar$/,
};

async function listFiles(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function probeJar(
  binDir: string,
  mw: MiddlewareName,
  pattern: RegExp,
): Promise<MiddlewareBinary> {
  for (const dir of [
    path.join(binDir, mw),
    path.join(binDir, mw, 'libs'),
    path.join(binDir, mw, 'lib'),
  ]) {
    for (const file of await listFiles(dir)) {
      const match = pattern.exec(file);
      if (match?.[1])
        return { name: mw, found: true, version: match[1], path: path.join(dir, file) };
    }
  }
  return { name: mw, found: false };
}

async function probeCockroach(binDir: string, signal?: AbortSignal): Promise<MiddlewareBinary> {
  const bin = path.join(binDir, 'cockroach');
  try {
    const { stdout } = await execa(bin, ['version', '--build-tag'], {
      timeout: 10_000,
      cancelSignal: signal,
    });
    return { name: 'cockroach', found: true, version: stdout.trim(), path: bin };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT') return { name: 'cockroach', found: false };
    return {
      name: 'cockroach',
      found: true,
      path: bin,
      version: `unknown (${(err as Error).message.split('\n')[0]})`,
    };
  }
}

/** What middleware the node has under its configured binary folder, and which versions. */
export async function probeMiddlewareVersions(
  binDir: string,
  signal?: AbortSignal,
): Promise<MiddlewareBinary[]> {
  return Promise.all(
    middlewareNames.map((mw) => {
      const pattern = jarPatterns[mw];
      return pattern ? probeJar(binDir, mw, pattern) : probeCockroach(binDir, signal);
    }),
  );
}
