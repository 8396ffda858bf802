#!/usr/bin/env node
// The `clusterguard` CLI. It runs the TypeScript sources through tsx (a dependency), so it works
// from a fresh clone without a build.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exit(await main(process.argv));
