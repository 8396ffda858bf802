import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bundleViewRows,
  renderBundleViewMarkdown,
  type NodeBundles,
} from '../../src/contracts/bundle-view.js';

const framework = (version: string, component = 'com.example.greeter ACTIVE') => ({
  pid: 42,
  bundles: [
    { symbolicName: 'org.apache.felix.scr', version: '2.2.18', state: 'ACTIVE', components: [] },
    {
      symbolicName: 'io.clusterguard.felix.agent',
      version: '1.0.0',
      state: 'ACTIVE',
      components: [],
    },
    { symbolicName: 'com.example.greeter', version, state: 'ACTIVE', components: [component] },
  ],
});
const recorded = (version: string) => ({ 'com.example.greeter': { version, sha256: 'a' } });
const desired = [
  {
    symbolicName: 'com.example.greeter',
    version: '1.1.0',
    sha256: 'a',
    workflowId: 'cg/c/bundle/com.example.greeter',
    at: '2026-12-06T00:00:00.000Z',
  },
];

describe('node × bundle view', () => {
  test('current nodes are ok; drift names what differs; platform bundles are left out', () => {
    const nodes: NodeBundles[] = [
      { node: '10.0.0.1', framework: framework('1.1.0'), recorded: recorded('1.1.0') },
      { node: '10.0.0.2', framework: framework('1.0.0'), recorded: recorded('1.0.0') },
      {
        node: '10.0.0.3',
        framework: framework('1.1.0', 'com.example.greeter FAILED_ACTIVATION: boom'),
        recorded: recorded('1.1.0'),
      },
      { node: '10.0.0.4', framework: { pid: 7, bundles: [] }, recorded: {} },
      { node: '10.0.0.5', recorded: {}, error: 'connection refused' },
    ];
    const rows = bundleViewRows(nodes, desired);
    assert.deepEqual(
      rows.map((r) => [r.node, r.symbolicName, r.version, r.desired, r.drift]),
      [
        ['10.0.0.1', 'com.example.greeter', '1.1.0', '1.1.0', []],
        ['10.0.0.2', 'com.example.greeter', '1.0.0', '1.1.0', ['runs 1.0.0, should run 1.1.0']],
        [
          '10.0.0.3',
          'com.example.greeter',
          '1.1.0',
          '1.1.0',
          ['component com.example.greeter FAILED_ACTIVATION: boom'],
        ],
        ['10.0.0.4', 'com.example.greeter', undefined, '1.1.0', ['lacks 1.1.0']],
        ['10.0.0.5', '—', undefined, undefined, ['connection refused']],
      ],
    );
    assert.equal(bundleViewRows(nodes.slice(0, 1), [], true).length, 3);
  });

  test('the markdown table has one row per node and bundle, pipes escaped', () => {
    const md = renderBundleViewMarkdown(
      bundleViewRows(
        [{ node: '10.0.0.1', framework: framework('1.1.0', 'a|b ACTIVE'), recorded: {} }],
        desired,
      ),
    );
    const lines = md.split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0] ?? '', /^\| node \| bundle \| version \| state \| components/);
    assert.equal(
      lines[2],
      '| 10.0.0.1 | com.example.greeter | 1.1.0 | ACTIVE | a\\|b ACTIVE | 1.1.0 | ok |',
    );
  });
});
