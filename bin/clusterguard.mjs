#!/usr/bin/env node
// The `clusterguard` CLI. It runs the compiled build in dist/cli/ (made by `npm run setup`, see
// scripts/build-cli.mjs) when that build matches the sources; else the TypeScript sources
// through tsx (a dependency), slower to start, so a fresh clone works without a build.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const repo = new URL('../', import.meta.url);
const dist = new URL('dist/cli/', repo);

/** Whether dist/cli was built from the sources as they are now (same hash of its inputs). */
function compiledIsCurrent() {
  try {
    const stamp = JSON.parse(readFileSync(new URL('build.json', dist), 'utf8'));
    const hash = createHash('sha256');
    for (const f of stamp.inputs) hash.update(`${f}\0`).update(readFileSync(new URL(f, repo)));
    return hash.digest('hex') === stamp.inputsHash;
  } catch {
    return false;
  }
}

let main;
if (compiledIsCurrent()) {
  ({ main } = await import(new URL('clusterguard.mjs', dist).href));
} else {
  process.stderr.write(
    'clusterguard: running from the TypeScript sources (slow start): the compiled CLI is ' +
      'missing or older than src/; `npm run setup` (or `node scripts/build-cli.mjs`) builds it\n',
  );
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exit(await main(process.argv));
