import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ClusterRegistry } from '../../src/config/cluster-registry.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';

const dir = await mkdtemp(path.join(os.tmpdir(), 'cg-registry-'));
after(() => rm(dir, { recursive: true, force: true }));

const at = (nodes: string[]) => ({
  nodes,
  recordedBy: 'wf/run',
  recordedAt: '2026-12-06T00:00:00Z',
});

test('a record is kept per cluster, and an unchanged one is not written again', async () => {
  const registry = new ClusterRegistry(path.join(dir, 'sub', 'clusters.json'));
  assert.equal(await registry.get('dev'), undefined);
  assert.equal(await registry.record('dev', at(['10.0.0.1', '10.0.0.2'])), true);
  assert.equal(await registry.record('lab', at(['10.0.1.1'])), true);
  assert.equal(await registry.record('dev', at(['10.0.0.1', '10.0.0.2'])), false);
  const reread = new ClusterRegistry(registry.file);
  assert.deepEqual((await reread.get('dev'))?.nodes, ['10.0.0.1', '10.0.0.2']);
  assert.deepEqual((await reread.get('lab'))?.nodes, ['10.0.1.1']);
  assert.equal(await registry.record('dev', at(['10.0.0.2', '10.0.0.1'])), true);
  assert.deepEqual((await reread.get('dev'))?.nodes, ['10.0.0.2', '10.0.0.1']);
});

test('a file that does not parse is named and left untouched', async () => {
  const file = path.join(dir, 'broken.json');
  await writeFile(file, '{"clusters": {"dev": ');
  const registry = new ClusterRegistry(file);
  await assert.rejects(registry.get('dev'), (err: unknown) => {
    assert.ok(err instanceof ClusterGuardError);
    assert.equal(err.type, 'InvalidConfig');
    assert.ok(err.message.includes(file), err.message);
    return true;
  });
  await assert.rejects(registry.record('dev', at(['10.0.0.1'])), ClusterGuardError);
  assert.equal(await readFile(file, 'utf8'), '{"clusters": {"dev": ');
});
