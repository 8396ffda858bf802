import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bundleWorkflowId,
  exceedsFailures,
  planRollback,
  planRollout,
  rolloutBundleInputSchema,
  type NodeInstall,
} from '../../src/contracts/bundles.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import { bundleIdentity, parseManifest } from '../../src/bundles/manifest.js';

const a = 'a'.repeat(64);
const b = 'b'.repeat(64);
const nodes = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'];

describe('planRollout', () => {
  test('skips nodes already at this version and hash, batches the rest in order', () => {
    const installed = new Map([
      ['10.0.0.2', { sha256: a, version: '1.0.0' }],
      ['10.0.0.3', { sha256: b, version: '0.9.0' }],
    ]);
    const plan = planRollout(nodes, installed, { sha256: a, version: '1.0.0' }, { batchSize: 2 });
    assert.deepEqual(plan.upToDate, ['10.0.0.2']);
    assert.deepEqual(plan.batches, [
      ['10.0.0.1', '10.0.0.3'],
      ['10.0.0.4', '10.0.0.5'],
    ]);
    assert.equal(plan.canary, false);
  });

  test('the same version with another hash is not current', () => {
    const installed = new Map([['10.0.0.1', { sha256: b, version: '1.0.0' }]]);
    const plan = planRollout(
      ['10.0.0.1'],
      installed,
      { sha256: a, version: '1.0.0' },
      { batchSize: 1 },
    );
    assert.deepEqual(plan.upToDate, []);
    assert.deepEqual(plan.batches, [['10.0.0.1']]);
  });

  test('a canary batch comes first, then batches of batchSize', () => {
    const plan = planRollout(
      nodes,
      new Map(),
      { sha256: a, version: '1' },
      { batchSize: 3, canary: 1 },
    );
    assert.equal(plan.canary, true);
    assert.deepEqual(plan.batches, [
      ['10.0.0.1'],
      ['10.0.0.2', '10.0.0.3', '10.0.0.4'],
      ['10.0.0.5'],
    ]);
  });

  test('nothing to do: no batches and no canary wait', () => {
    const installed = new Map(nodes.map((n) => [n, { sha256: a, version: '1' }]));
    const plan = planRollout(
      nodes,
      installed,
      { sha256: a, version: '1' },
      { batchSize: 1, canary: 2 },
    );
    assert.deepEqual(plan.batches, []);
    assert.equal(plan.canary, false);
    assert.deepEqual(plan.upToDate, nodes);
  });

  test('refuses a batch size below 1', () => {
    assert.throws(() =>
      planRollout(nodes, new Map(), { sha256: a, version: '1' }, { batchSize: 0 }),
    );
  });
});

describe('planRollback and maxFailures', () => {
  test('rolls back only the nodes that changed, to what each had, newest change first', () => {
    const changed: NodeInstall[] = [
      { node: '10.0.0.1', outcome: 'installed', previous: { version: '1', sha256: b } },
      { node: '10.0.0.2', outcome: 'current', previous: null },
      { node: '10.0.0.3', outcome: 'installed', previous: null },
    ];
    assert.deepEqual(planRollback(changed), [
      { node: '10.0.0.3', to: null },
      { node: '10.0.0.1', to: { version: '1', sha256: b } },
    ]);
  });

  test('failures stop the rollout once they exceed maxFailures', () => {
    assert.equal(exceedsFailures(0, 0), false);
    assert.equal(exceedsFailures(1, 0), true);
    assert.equal(exceedsFailures(1, 1), false);
    assert.equal(exceedsFailures(2, 1), true);
  });
});

describe('rolloutBundle input', () => {
  test('defaults, and the sha256 is normalised to lower case', () => {
    const p = rolloutBundleInputSchema.parse({
      clusterId: 'c1',
      sha256: a.toUpperCase(),
      nodes: ['10.0.0.1'],
    });
    assert.equal(p.sha256, a);
    assert.equal(p.batchSize, 1);
    assert.equal(p.maxFailures, 0);
    assert.equal(p.dryRun, false);
  });

  test('needs a real sha256 and a health check name, not a command; nodes and master may be left out', () => {
    const r = rolloutBundleInputSchema.safeParse({
      clusterId: 'c1',
      sha256: 'abc',
      healthCheck: 'curl http://x',
    });
    assert.equal(r.success, false);
    const paths = r.error?.issues.map((i) => i.path.join('.')) ?? [];
    assert.ok(paths.includes('sha256'), paths.join());
    assert.ok(paths.includes('healthCheck'), paths.join());
    assert.equal(paths.length, 2, paths.join());
    assert.equal(
      rolloutBundleInputSchema.safeParse({ clusterId: 'c1', sha256: a, master: '10.0.0.1' })
        .success,
      true,
    );
    // Neither: the members come from the master in the cluster record (docs/design.md).
    assert.equal(rolloutBundleInputSchema.safeParse({ clusterId: 'c1', sha256: a }).success, true);
  });

  test('the workflow id of a bundle', () => {
    assert.equal(bundleWorkflowId('c1', 'com.example.a'), 'cg/c1/bundle/com.example.a');
  });
});

describe('JAR manifests', () => {
  test('continuation lines and parameters of Bundle-SymbolicName', () => {
    const text =
      'Manifest-Version: 1.0\r\nBundle-ManifestVersion: 2\r\n' +
      'Bundle-SymbolicName: com.example.very.long.symbolic.name.that.wraps.at.seventy-t\r\n' +
      ' wo.bytes;singleton:=true\r\nBundle-Version: 2.1.0.RC1\r\nImport-Package: a,\r\n b\r\n\r\n' +
      'Name: other/section\r\nBundle-Version: 9\r\n';
    const headers = parseManifest(text);
    assert.equal(headers.get('Import-Package'), 'a,b');
    assert.deepEqual(bundleIdentity(headers), {
      symbolicName: 'com.example.very.long.symbolic.name.that.wraps.at.seventy-two.bytes',
      version: '2.1.0.RC1',
    });
  });

  test('header names are case-insensitive', () => {
    const id = bundleIdentity(parseManifest('bundle-symbolicname: a.b\nbundle-version: 1.2\n'));
    assert.deepEqual(id, { symbolicName: 'a.b', version: '1.2' });
  });

  test('refuses a manifest without a symbolic name or version, or with a bad one', () => {
    const refusal = (text: string) => {
      try {
        bundleIdentity(parseManifest(text));
      } catch (err) {
        assert.ok(err instanceof ClusterGuardError);
        assert.equal(err.type, 'InvalidInput');
        return err.message;
      }
      assert.fail('accepted');
    };
    assert.match(refusal('Manifest-Version: 1.0\n'), /no Bundle-SymbolicName/);
    assert.match(refusal('Bundle-SymbolicName: a\n'), /no Bundle-Version/);
    assert.match(
      refusal('Bundle-SymbolicName: ../../etc\nBundle-Version: 1\n'),
      /not a valid symbolic name/,
    );
    assert.match(refusal('Bundle-SymbolicName: a\nBundle-Version: one\n'), /not an OSGi version/);
  });
});
