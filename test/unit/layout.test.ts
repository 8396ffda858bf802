import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { archiveTimestamp, NodeLayout } from '../../src/config/layout.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';

const layout = new NodeLayout('/ibnsdata/guard');

test('every path of a node (docs/design.md, "On-disk layout of a node") derives from the root', () => {
  assert.equal(layout.clusterFile, '/ibnsdata/guard/conf/cluster.json');
  assert.equal(
    layout.clusterConfigFor('172.18.135.12'),
    '/ibnsdata/guard/cluster-config/172.18.135.12',
  );
  assert.equal(
    layout.clusterConfigFor('172.18.135.12', 'cockroach'),
    '/ibnsdata/guard/cluster-config/172.18.135.12/cockroach/certs',
  );
  assert.equal(
    layout.clusterConfigFor('172.18.135.12', 'kafka'),
    '/ibnsdata/guard/cluster-config/172.18.135.12/kafka/conf',
  );
  assert.equal(
    layout.distributionFileFor('172.18.135.13'),
    '/ibnsdata/guard/cluster-distribution/172.18.135.13.zip',
  );
  assert.equal(layout.nodeConfigFolder('zookeeper'), '/ibnsdata/guard/node-config/zookeeper/conf');
  assert.equal(layout.nodeDataFolder('kafka'), '/ibnsdata/guard/node-data/kafka/data');
  assert.equal(layout.nodeLogFolder('cockroach'), '/ibnsdata/guard/node-data/cockroach/log');
  assert.equal(
    layout.workingFolder('backup', 'controller'),
    '/ibnsdata/guard/backup-data/controller',
  );
  assert.equal(layout.archiveFolder('restore'), '/ibnsdata/guard/restore-data-archive');
  assert.equal(
    layout.archiveFile('export', new Date('2026-11-22T07:45:12.345Z')),
    '/ibnsdata/guard/export-data-archive/20261122T074512Z.zip',
  );
});

test('archive timestamps sort like the times they name', () => {
  const a = archiveTimestamp(new Date('2026-01-02T03:04:05Z'));
  const b = archiveTimestamp(new Date('2026-11-22T00:00:00Z'));
  assert.equal(a, '20260102T030405Z');
  assert.ok(a < b);
});

test('a path is never built from something that is not a node address', () => {
  for (const bad of ['../etc', '/abs', 'a/b', '', '..']) {
    assert.throws(
      () => layout.distributionFileFor(bad),
      (err: unknown) => err instanceof ClusterGuardError && err.type === 'InvalidInput',
    );
  }
});

test('ensureAll creates every folder and is idempotent', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'cg-layout-'));
  try {
    const l = new NodeLayout(root);
    await l.ensureAll();
    await l.ensureAll();
    for (const folder of l.allFolders()) assert.ok((await stat(folder)).isDirectory(), folder);
    assert.ok(l.allFolders().includes(path.join(root, 'import-data', 'kafka')));
    assert.ok(l.allFolders().includes(path.join(root, 'backup-data-archive')));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
