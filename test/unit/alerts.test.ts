import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { repoRoot } from '../../src/process.js';

/** deploy/prometheus: the alert rules are valid and fire on what they name (promtool). */
const dir = path.join(repoRoot, 'deploy', 'prometheus');
const promtool = async (args: string[]) => {
  const res = await execa('promtool', args, { cwd: dir, reject: false, all: true });
  if ((res as { code?: string }).code === 'ENOENT') {
    assert.fail('promtool is missing: apt-get install prometheus (it carries promtool)');
  }
  return res;
};

test('promtool check rules: the alert rules are valid', async () => {
  const res = await promtool(['check', 'rules', 'alerts.yaml']);
  assert.equal(res.exitCode, 0, res.all);
  assert.match(res.all ?? '', /SUCCESS: 4 rules found/);
});

test('promtool test rules: a parked runbook, a server down and an unreachable node alert', async () => {
  const res = await promtool(['test', 'rules', 'alerts.test.yaml']);
  assert.equal(res.exitCode, 0, res.all);
});

test('promtool check config: the scrape config of the production start', async () => {
  const res = await promtool(['check', 'config', 'prometheus.yml']);
  assert.equal(res.exitCode, 0, res.all);
});
