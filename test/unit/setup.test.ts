import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot } from '../../src/process.js';

/** A stand-in `temporal` binary: answers --version like the real CLI, nothing else. */
const fakeTemporal = '#!/bin/sh\necho "temporal version 9.9.9 (Server 1.29.1, UI 2.42.1)"\n';

describe('tools setup (scripts/setup.mjs, run on a copy in a temporary checkout)', () => {
  let dir: string;
  let checkout: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-setup-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function freshCheckout(name: string): Promise<string> {
    checkout = path.join(dir, name);
    await mkdir(path.join(checkout, 'scripts'), { recursive: true });
    await copyFile(
      path.join(repoRoot, 'scripts', 'setup.mjs'),
      path.join(checkout, 'scripts', 'setup.mjs'),
    );
    await writeFile(path.join(checkout, 'package-lock.json'), '{}');
    return checkout;
  }

  async function fakeBinary(folder: string): Promise<string> {
    await mkdir(folder, { recursive: true });
    const bin = path.join(folder, 'temporal');
    await writeFile(bin, fakeTemporal);
    await chmod(bin, 0o755);
    return bin;
  }

  function runSetup(root: string, env: Record<string, string>, flags = ['--no-jars']) {
    return spawnSync(
      process.execPath,
      [path.join(root, 'scripts', 'setup.mjs'), '--tools-only', ...flags],
      {
        encoding: 'utf8',
        env: { HOME: dir, ...env },
      },
    );
  }

  test('a binary in the tools cache is linked into .tools/bin, and a second run changes nothing', async () => {
    const root = await freshCheckout('cached');
    const cache = path.join(dir, 'cache-a');
    const bin = await fakeBinary(path.join(cache, 'bin'));
    const env = { CLUSTERGUARD_TOOLS_DIR: cache, PATH: path.join(dir, 'empty') };
    const first = runSetup(root, env);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(await readlink(path.join(root, '.tools', 'bin', 'temporal')), bin);
    const second = runSetup(root, env);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /tools ready in \d+\.\d s/);
    assert.equal(await readlink(path.join(root, '.tools', 'bin', 'temporal')), bin);
  });

  test('without a cached binary, a temporal CLI on PATH is used', async () => {
    const root = await freshCheckout('on-path');
    const pathDir = path.join(dir, 'path-bin');
    const bin = await fakeBinary(pathDir);
    const res = runSetup(root, {
      CLUSTERGUARD_TOOLS_DIR: path.join(dir, 'cache-b'),
      PATH: pathDir,
    });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stderr, /using the Temporal CLI on PATH/);
    assert.equal(await readlink(path.join(root, '.tools', 'bin', 'temporal')), bin);
  });

  test('the middleware jars need Java and Maven: without them it fails saying what to install', async () => {
    const root = await freshCheckout('no-maven');
    await mkdir(path.join(root, 'scripts', 'tools'), { recursive: true });
    for (const pom of ['zookeeper.pom.xml', 'kafka.pom.xml']) {
      await copyFile(
        path.join(repoRoot, 'scripts', 'tools', pom),
        path.join(root, 'scripts', 'tools', pom),
      );
    }
    const cache = path.join(dir, 'cache-d');
    await fakeBinary(path.join(cache, 'bin'));
    const res = runSetup(
      root,
      { CLUSTERGUARD_TOOLS_DIR: cache, PATH: path.join(dir, 'empty') },
      [],
    );
    assert.equal(res.status, 1);
    assert.match(
      res.stderr,
      /zookeeper 3\.9\.3 runs from Maven Central jars: install Java 17 and Maven/,
    );
  });

  test('with neither a binary nor Go, it fails saying what to install', async () => {
    const root = await freshCheckout('nothing');
    const res = runSetup(root, {
      CLUSTERGUARD_TOOLS_DIR: path.join(dir, 'cache-c'),
      PATH: path.join(dir, 'empty'),
    });
    assert.equal(res.status, 1);
    assert.match(res.stderr, /install Go/);
    assert.match(res.stderr, /put a `temporal` binary/);
  });
});
