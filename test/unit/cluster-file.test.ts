// node:test's describe/test return promises that the runner itself awaits and reports.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  clusterFileSchema,
  defaultClusterFile,
  formatIssues,
  masterOf,
  parseClusterDatetime,
  parseIsoDateTime,
  parseLegacyDate,
  serializeClusterFile,
  standaloneAddress,
  type ClusterFile,
} from '../../src/contracts/cluster-file.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';

const javaDate = 'Wed Oct 24 2018 11:19:25 GMT+0800';
const javaDateIso = '2018-10-24T03:19:25.000Z';

// The old service's default file (docs/design.md, "The old service's formats we keep").
const seedDefault = `{
    "cluster": {
        "datetime": "Wed Oct 24 2018 11:19:25 GMT+0800",
        "nodes": ["127.0.0.1"],
        "decommissionNodes": [],
        "clusterConfigReady": true,
        "nodeConfigReady": true,
        "nodeIsMaster": true,
        "nodeIsRejoin": true
    },
    "history": [
    ]
}`;

// A formed cluster's file as the old service wrote it.
const seedFormed = `{
    "cluster": {
        "datetime": "Wed Oct 24 2018 11:19:25 GMT+0800",
        "nodes": ["172.18.135.11", "172.18.135.12", "172.18.135.13"],
        "decommissionNodes": ["172.18.135.14", "17.28.135.15"]
    },
    "history": [
        {
            "datetime": "Wed Oct 24 2018 11:19:25 GMT+0800",
            "cluster": ["127.0.0.1"]
        }
    ]
    
}`;

// A changed cluster's file as the old service wrote it (its other history shape).
const seedChanged = `{
    "cluster": {
        "datetime": "Wed Oct 24 2018 11:19:25 GMT+0800",
        "nodes": ["172.18.135.11", "172.18.135.12", "172.18.135.13"],
        "decommissionNodes": ["172.18.135.14", "17.28.135.15"]
    },
    "history": [
        {
            "datetime": "Wed Oct 24 2018 11:19:25 GMT+0800",
            "nodes": ["127.0.0.1"],
            "decommissionNodes": []
        }
    ]
    
}`;

function minimal(cluster: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    cluster: { datetime: javaDateIso, nodes: ['172.18.135.11'], ...cluster },
    history: [],
    ...extra,
  };
}

function issuePaths(input: unknown): string[] {
  const result = clusterFileSchema.safeParse(input);
  if (result.success) assert.fail('expected the schema to refuse the input');
  return result.error.issues.map((i) => i.path.join('.'));
}

describe('parseLegacyDate', () => {
  test('parses the old date with its +0800 offset', () => {
    assert.equal(parseLegacyDate(javaDate)?.toISOString(), javaDateIso);
  });

  test('accepts a trailing zone name and surrounding spaces', () => {
    const date = parseLegacyDate(`  ${javaDate} (China Standard Time) `);
    assert.equal(date?.toISOString(), javaDateIso);
  });

  test('applies negative and colon-separated offsets', () => {
    assert.equal(
      parseLegacyDate('Tue Jan 01 2019 00:30:00 GMT-0530')?.toISOString(),
      '2019-01-01T06:00:00.000Z',
    );
    assert.equal(
      parseLegacyDate('Tue Jan 01 2019 00:30:00 GMT+08:00')?.toISOString(),
      '2018-12-31T16:30:00.000Z',
    );
  });

  test('accepts a one-digit day and any letter case', () => {
    assert.equal(
      parseLegacyDate('fri MAR 1 2019 12:00:00 GMT+0000')?.toISOString(),
      '2019-03-01T12:00:00.000Z',
    );
  });

  test('refuses impossible or foreign dates', () => {
    for (const s of [
      'Wed Feb 30 2018 11:19:25 GMT+0800',
      'Wed Foo 24 2018 11:19:25 GMT+0800',
      'Xyz Oct 24 2018 11:19:25 GMT+0800',
      'Wed Oct 24 2018 24:00:00 GMT+0800',
      'Wed Oct 24 2018 11:60:00 GMT+0800',
      'Wed Oct 24 2018 11:19:25 GMT+1500',
      'Wed Oct 24 2018 11:19:25',
      'Wed Oct 24 11:19:25 CST 2018',
      javaDateIso,
      '',
    ]) {
      assert.equal(parseLegacyDate(s), undefined, s);
    }
  });
});

describe('parseIsoDateTime', () => {
  test('parses UTC and offsets in every ISO-8601 spelling', () => {
    assert.equal(parseIsoDateTime(javaDateIso)?.toISOString(), javaDateIso);
    assert.equal(parseIsoDateTime('2018-10-24T11:19:25+08:00')?.toISOString(), javaDateIso);
    assert.equal(parseIsoDateTime('2018-10-24T11:19:25+0800')?.toISOString(), javaDateIso);
    assert.equal(parseIsoDateTime('2018-10-24T11:19:25+08')?.toISOString(), javaDateIso);
    assert.equal(parseIsoDateTime('2018-10-24t03:19z')?.toISOString(), '2018-10-24T03:19:00.000Z');
  });

  test('keeps milliseconds of a longer fraction', () => {
    assert.equal(
      parseIsoDateTime('2018-10-24T03:19:25.123456789Z')?.toISOString(),
      '2018-10-24T03:19:25.123Z',
    );
    assert.equal(
      parseIsoDateTime('2018-10-24T03:19:25.5Z')?.toISOString(),
      '2018-10-24T03:19:25.500Z',
    );
  });

  test('refuses zone-less, impossible and partial values', () => {
    for (const s of [
      '2018-10-24T03:19:25',
      '2018-10-24',
      '2019-02-29T00:00:00Z',
      '2018-13-01T00:00:00Z',
      '2018-10-24T25:00:00Z',
      'yesterday',
    ]) {
      assert.equal(parseIsoDateTime(s), undefined, s);
    }
  });

  test('accepts 29 February of a leap year', () => {
    assert.equal(
      parseIsoDateTime('2020-02-29T00:00:00Z')?.toISOString(),
      '2020-02-29T00:00:00.000Z',
    );
  });
});

describe('parseClusterDatetime', () => {
  test('accepts ISO, the legacy format and epoch milliseconds', () => {
    assert.equal(parseClusterDatetime(javaDateIso)?.toISOString(), javaDateIso);
    assert.equal(parseClusterDatetime(javaDate)?.toISOString(), javaDateIso);
    assert.equal(parseClusterDatetime(1540351165000)?.toISOString(), javaDateIso);
  });

  test('refuses other values', () => {
    for (const [i, v] of [-1, 1.5, Number.NaN, true, null, undefined, {}, 'later'].entries()) {
      assert.equal(parseClusterDatetime(v), undefined, `value #${i}`);
    }
  });
});

describe('clusterFileSchema', () => {
  test('loads the old default with every flag true and ISO datetime', () => {
    const file = clusterFileSchema.parse(JSON.parse(seedDefault));
    assert.deepEqual(file, {
      cluster: {
        datetime: javaDateIso,
        nodes: ['127.0.0.1'],
        decommissionNodes: [],
        clusterConfigReady: true,
        nodeConfigReady: true,
        nodeIsMaster: true,
        nodeIsRejoin: true,
      },
      history: [],
    });
  });

  test('loads an old formed file: missing flags false, typo address kept, old history shape', () => {
    const file = clusterFileSchema.parse(JSON.parse(seedFormed));
    assert.deepEqual(file.cluster, {
      datetime: javaDateIso,
      nodes: ['172.18.135.11', '172.18.135.12', '172.18.135.13'],
      decommissionNodes: ['172.18.135.14', '17.28.135.15'],
      clusterConfigReady: false,
      nodeConfigReady: false,
      nodeIsMaster: false,
      nodeIsRejoin: false,
    });
    assert.deepEqual(file.history, [
      { datetime: javaDateIso, nodes: ['127.0.0.1'], decommissionNodes: [] },
    ]);
  });

  test('normalises both old history shapes to the same entry', () => {
    const formed = clusterFileSchema.parse(JSON.parse(seedFormed));
    const changed = clusterFileSchema.parse(JSON.parse(seedChanged));
    assert.deepEqual(formed, changed);
  });

  test('keeps the reason of a history entry and drops its unknown keys', () => {
    const file = clusterFileSchema.parse(
      minimal(
        {},
        {
          history: [
            { datetime: javaDate, nodes: ['172.18.135.11'], reason: 'grow', by: 'someone' },
            { datetime: javaDate, nodes: ['172.18.135.11'], reason: null },
          ],
        },
      ),
    );
    assert.deepEqual(file.history, [
      { datetime: javaDateIso, nodes: ['172.18.135.11'], decommissionNodes: [], reason: 'grow' },
      { datetime: javaDateIso, nodes: ['172.18.135.11'], decommissionNodes: [] },
    ]);
  });

  test('prefers "nodes" over the old "cluster" list when an entry has both', () => {
    const file = clusterFileSchema.parse(
      minimal(
        {},
        {
          history: [{ datetime: javaDate, nodes: ['172.18.135.12'], cluster: ['172.18.135.13'] }],
        },
      ),
    );
    assert.deepEqual(file.history[0]?.nodes, ['172.18.135.12']);
  });

  test('refuses a history entry without members', () => {
    assert.deepEqual(issuePaths(minimal({}, { history: [{ datetime: javaDate }] })), ['history.0']);
  });

  test('keeps unknown keys of the file and of cluster', () => {
    const file = clusterFileSchema.parse(
      minimal({ uuid: 'u-1', currentNode: '172.18.135.11' }, { schemaVersion: 2 }),
    );
    assert.equal(file.cluster['uuid'], 'u-1');
    assert.equal(file.cluster['currentNode'], '172.18.135.11');
    assert.equal(file['schemaVersion'], 2);
  });

  test('reads null flags and lists as false and empty, a missing history as empty', () => {
    const file = clusterFileSchema.parse({
      cluster: {
        datetime: javaDate,
        nodes: ['172.18.135.11'],
        decommissionNodes: null,
        clusterConfigReady: null,
        nodeIsMaster: true,
      },
    });
    assert.deepEqual(file.cluster.decommissionNodes, []);
    assert.equal(file.cluster.clusterConfigReady, false);
    assert.equal(file.cluster.nodeIsMaster, true);
    assert.deepEqual(file.history, []);
  });

  test('drops duplicate decommission entries', () => {
    const file = clusterFileSchema.parse(
      minimal({ decommissionNodes: ['172.18.135.14', '172.18.135.14'] }),
    );
    assert.deepEqual(file.cluster.decommissionNodes, ['172.18.135.14']);
  });

  test('trims addresses', () => {
    const file = clusterFileSchema.parse(minimal({ nodes: [' 172.18.135.11 '] }));
    assert.deepEqual(file.cluster.nodes, ['172.18.135.11']);
  });

  test('refuses empty, duplicate and invalid node lists', () => {
    assert.deepEqual(issuePaths(minimal({ nodes: [] })), ['cluster.nodes']);
    assert.deepEqual(issuePaths(minimal({ nodes: ['172.18.135.11', '172.18.135.11'] })), [
      'cluster.nodes',
    ]);
    assert.deepEqual(issuePaths(minimal({ nodes: ['172.18.135.11', '300.1.1.1'] })), [
      'cluster.nodes.1',
    ]);
    assert.deepEqual(issuePaths(minimal({ decommissionNodes: ['a/b'] })), [
      'cluster.decommissionNodes.0',
    ]);
  });

  test('refuses a missing, zone-less or non-string datetime', () => {
    assert.deepEqual(issuePaths(minimal({ datetime: undefined })), ['cluster.datetime']);
    assert.deepEqual(issuePaths(minimal({ datetime: '2018-10-24T03:19:25' })), [
      'cluster.datetime',
    ]);
    assert.deepEqual(issuePaths(minimal({ datetime: true })), ['cluster.datetime']);
  });

  test('refuses a file without cluster and a non-object', () => {
    assert.deepEqual(issuePaths({ history: [] }), ['cluster']);
    assert.deepEqual(issuePaths(null), ['']);
  });
});

describe('defaultClusterFile', () => {
  const now = new Date('2026-01-02T03:04:05.678Z');

  test('is the old default file: standalone node, all flags true, no history', () => {
    assert.deepEqual(defaultClusterFile(now), {
      cluster: {
        datetime: '2026-01-02T03:04:05.678Z',
        nodes: [standaloneAddress],
        decommissionNodes: [],
        clusterConfigReady: true,
        nodeConfigReady: true,
        nodeIsMaster: true,
        nodeIsRejoin: true,
      },
      history: [],
    });
    assert.equal(standaloneAddress, '127.0.0.1');
  });

  test('takes another address', () => {
    assert.deepEqual(defaultClusterFile(now, '172.18.135.11').cluster.nodes, ['172.18.135.11']);
  });

  test('refuses an invalid address with InvalidInput', () => {
    assert.throws(
      () => defaultClusterFile(now, '../etc'),
      (e: unknown) =>
        e instanceof ClusterGuardError && e.type === 'InvalidInput' && e.message.includes('../etc'),
    );
  });
});

describe('masterOf', () => {
  test('is the first node', () => {
    const file = clusterFileSchema.parse(JSON.parse(seedFormed));
    assert.equal(masterOf(file), '172.18.135.11');
  });

  test('throws InvalidInput for a hand-built file without nodes', () => {
    const file = defaultClusterFile(new Date(0));
    const broken: ClusterFile = { ...file, cluster: { ...file.cluster, nodes: [] } };
    assert.throws(
      () => masterOf(broken),
      (e: unknown) => e instanceof ClusterGuardError && e.type === 'InvalidInput',
    );
  });
});

describe('serializeClusterFile', () => {
  test('writes legacy dates back as ISO-8601 with 2-space indentation and a newline', () => {
    const file = clusterFileSchema.parse(JSON.parse(seedFormed));
    const text = serializeClusterFile(file);
    assert.ok(!text.includes('GMT'));
    assert.ok(text.endsWith('}\n'));
    assert.ok(text.startsWith('{\n  "cluster": {\n    "datetime": "2018-10-24T03:19:25.000Z"'));
    assert.deepEqual(JSON.parse(text), file);
  });

  test('is a fixed point: parsing the written text and writing again changes nothing', () => {
    const text = serializeClusterFile(clusterFileSchema.parse(JSON.parse(seedChanged)));
    const again = serializeClusterFile(clusterFileSchema.parse(JSON.parse(text)));
    assert.equal(again, text);
  });

  test('refuses an invalid value instead of writing it', () => {
    const file = defaultClusterFile(new Date(0));
    const broken = { ...file, cluster: { ...file.cluster, nodes: ['not an address'] } };
    assert.throws(() => serializeClusterFile(broken));
  });
});

describe('formatIssues', () => {
  test('names the path, the message and the offending value', () => {
    const input = minimal({ nodes: ['172.18.135.11', '300.1.1.1'] });
    const result = clusterFileSchema.safeParse(input);
    if (result.success) assert.fail('expected the schema to refuse the input');
    const text = formatIssues(result.error, input);
    assert.match(text, /^cluster\.nodes\[1\]: expected an IPv4 address.* \(got "300\.1\.1\.1"\)$/);
  });

  test('names the top level and leaves out the value without input', () => {
    const result = clusterFileSchema.safeParse(42);
    if (result.success) assert.fail('expected the schema to refuse the input');
    assert.match(formatIssues(result.error), /^\(top level\): [^(]*$/);
  });
});
