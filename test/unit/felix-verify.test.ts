import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FelixBundle, FelixOperationReport } from '../../src/middleware/felix/client.js';
import {
  bundleProblems,
  compareOsgiVersions,
  missingPackages,
  reportProblems,
} from '../../src/middleware/felix/verify.js';

const bundle = (over: Partial<FelixBundle> = {}): FelixBundle => ({
  id: 11,
  symbolicName: 'com.example.greeter.provider',
  version: '1.1.0',
  state: 'ACTIVE',
  location: 'clusterguard:com.example.greeter.provider',
  components: [{ name: 'com.example.greeter.provider', state: 'ACTIVE', immediate: true }],
  ...over,
});
const report = (over: Partial<FelixOperationReport> = {}): FelixOperationReport => ({
  action: 'updated',
  refreshed: [11],
  bundle: bundle(),
  lostActive: [],
  ...over,
});

describe('Felix verification rules', () => {
  test('OSGi versions compare numerically; 1.1 is 1.1.0; the qualifier orders last', () => {
    assert.equal(compareOsgiVersions('1.10.0', '1.9.0'), 1);
    assert.equal(compareOsgiVersions('1.1', '1.1.0'), 0);
    assert.equal(compareOsgiVersions('1.0.0', '1.0.0.beta'), -1);
    assert.equal(compareOsgiVersions('2.0.0', '10.0.0'), -1);
  });

  test('ACTIVE at the version with active components is running', () => {
    assert.deepEqual(bundleProblems(bundle(), '1.1'), []);
    assert.deepEqual(reportProblems(report(), '1.1.0'), []);
  });

  test('a delayed component may wait satisfied; an immediate one may not', () => {
    const delayed = bundle({
      components: [{ name: 'c', state: 'SATISFIED', immediate: false }],
    });
    assert.deepEqual(bundleProblems(delayed, '1.1.0'), []);
    const immediate = bundle({ components: [{ name: 'c', state: 'SATISFIED', immediate: true }] });
    assert.deepEqual(bundleProblems(immediate, '1.1.0'), ['component c is SATISFIED']);
  });

  test('ACTIVE with a component that failed to activate is not running, with the failure text', () => {
    const failed = bundle({
      version: '1.2.0',
      components: [
        {
          name: 'com.example.greeter.provider',
          state: 'FAILED_ACTIVATION',
          immediate: true,
          failure: 'java.lang.IllegalStateException: no\n\tat a.B.activate(B.java:13)\n\tat x.Y',
        },
      ],
    });
    assert.deepEqual(bundleProblems(failed, '1.2.0'), [
      'component com.example.greeter.provider failed to activate: java.lang.IllegalStateException: no at a.B.activate(B.java:13)',
    ]);
  });

  test('a resolution error names the package nobody exports; stranded bundles are named', () => {
    const error =
      'Unable to resolve x [13](R 13.0): missing requirement [x [13](R 13.0)] osgi.wiring.package; ' +
      '(&(osgi.wiring.package=com.example.nowhere)(version>=3.0.0)(!(version>=4.0.0)))';
    assert.deepEqual(missingPackages(error), ['com.example.nowhere']);
    const problems = reportProblems(
      report({
        action: 'installed',
        error,
        bundle: bundle({ state: 'INSTALLED', components: [] }),
        lostActive: [bundle({ id: 12, symbolicName: 'com.example.consumer', state: 'INSTALLED' })],
      }),
      '1.1.0',
    );
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems[0] ?? '', /imports com\.example\.nowhere, which no bundle/);
    assert.match(
      problems[1] ?? '',
      /were ACTIVE before are not now: com\.example\.consumer 1\.1\.0/,
    );
  });

  test('a wrong version or state is named', () => {
    assert.deepEqual(bundleProblems(bundle({ state: 'RESOLVED', components: [] }), '1.2.0'), [
      'the framework runs version 1.1.0, not 1.2.0',
      'it is RESOLVED, not ACTIVE',
    ]);
    assert.deepEqual(bundleProblems(undefined, '1.0.0'), ['it is not installed in the framework']);
  });
});
