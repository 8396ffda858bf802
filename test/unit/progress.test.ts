import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderProgressMarkdown, type Progress } from '../../src/contracts/progress.js';

const progress: Progress = {
  runbook: 'pingCluster',
  clusterId: 'dev',
  status: 'running',
  updatedAt: '2026-11-22T08:00:00.000Z',
  steps: [
    { id: 'a', title: 'ping node agent', node: '127.0.0.11', status: 'completed', attempts: 1 },
    {
      id: 'b',
      title: 'ping node agent',
      node: '127.0.0.12',
      status: 'waiting',
      attempts: 2,
      lastError: 'no agent | line one\nline two',
    },
    { id: 'c', title: 'cluster step', status: 'pending', attempts: 0 },
  ],
};

test('the Web UI details are a Markdown table with one row per step', () => {
  const md = renderProgressMarkdown(progress);
  const lines = md.split('\n');
  assert.match(lines[0]!, /\*\*pingCluster\*\* on cluster `dev` — running, 1\/3 steps done/);
  assert.equal(lines[2], '| step | node | status | attempts | last error |');
  assert.equal(lines.filter((l) => l.startsWith('| ping node agent')).length, 2);
  assert.match(md, /\| 127\.0\.0\.12 \| ⚠️ waiting \| 2 \| no agent \\\| line one line two \|/);
  assert.match(md, /\| cluster step \| — \| ⏳ pending \| 0 \|/);
  assert.equal(lines.length, 7, 'a pipe or newline in an error must not add rows');
});
