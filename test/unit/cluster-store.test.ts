// node:test's describe/test return promises that the runner itself awaits and reports.
import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  defaultClusterFile,
  serializeClusterFile,
  type ClusterFile,
} from '../../src/contracts/cluster-file.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import { ClusterStore, historyLimit, lastGoodPath } from '../../src/config/cluster-store.js';

const a = '172.18.135.11';
const b = '172.18.135.12';
const c = '172.18.135.13';
const d = '172.18.135.14';

// A formed cluster's file as the old service wrote it (docs/design.md).
const javaFile = `{
    "cluster": {
        "datetime": "Wed Oct 24 2018 11:19:25 GMT+0800",
        "nodes": ["172.18.135.11", "172.18.135.12", "172.18.135.13"],
        "decommissionNodes": ["172.18.135.14", "17.28.135.15"],
        "uuid": "kept-by-us"
    },
    "history": [
        {
            "datetime": "Wed Oct 24 2018 11:19:25 GMT+0800",
            "cluster": ["127.0.0.1"]
        }
    ]
}`;

const fixedNow = new Date('2026-03-04T05:06:07.089Z');

let dir: string;
let file: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cg-'));
  file = path.join(dir, 'conf', 'cluster.json');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function store(now: () => Date = () => fixedNow): ClusterStore {
  return new ClusterStore({ file, now });
}

async function put(text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}

async function confEntries(): Promise<string[]> {
  return (await readdir(path.dirname(file))).sort();
}

function isCorrupt(...fragments: string[]) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof ClusterGuardError, `expected ClusterGuardError, got ${String(e)}`);
    assert.equal(e.type, 'CorruptClusterFile');
    for (const f of fragments) assert.ok(e.message.includes(f), `"${f}" not in: ${e.message}`);
    return true;
  };
}

function withNodes(nodes: string[]) {
  return (f: ClusterFile): ClusterFile => ({ ...f, cluster: { ...f.cluster, nodes } });
}

describe('ClusterStore.load', () => {
  test('creates the old service’s default (and its folder) when the file is missing', async () => {
    const loaded = await store().load();
    assert.deepEqual(loaded, defaultClusterFile(fixedNow));
    assert.equal(await readFile(file, 'utf8'), serializeClusterFile(defaultClusterFile(fixedNow)));
    assert.deepEqual(await confEntries(), ['cluster.json']);
  });

  test('does not recreate an existing file', async () => {
    await put(javaFile);
    const loaded = await store().load();
    assert.deepEqual(loaded.cluster.nodes, [a, b, c]);
    assert.equal(await readFile(file, 'utf8'), javaFile);
  });

  test('returns a file of the old service with ISO dates and keeps unknown keys', async () => {
    await put(javaFile);
    const loaded = await store().load();
    assert.equal(loaded.cluster.datetime, '2018-10-24T03:19:25.000Z');
    assert.equal(loaded.cluster['uuid'], 'kept-by-us');
    assert.deepEqual(loaded.history, [
      { datetime: '2018-10-24T03:19:25.000Z', nodes: ['127.0.0.1'], decommissionNodes: [] },
    ]);
  });

  test('accepts a UTF-8 byte order mark', async () => {
    await put(`\uFEFF${javaFile}`);
    assert.deepEqual((await store().load()).cluster.nodes, [a, b, c]);
  });

  test('never reads a half-written temp file left beside it by a crash', async () => {
    await put(javaFile);
    await writeFile(path.join(dir, 'conf', '.cluster.json.123.abc.tmp'), '{"cluster": {"nod');
    assert.deepEqual((await store().load()).cluster.nodes, [a, b, c]);
  });

  test('reports invalid JSON with path, position and last good copy, and leaves both files', async () => {
    const broken = '{\n  "cluster": {\n    "nodes": ["172.18.135.11",]\n  }\n}\n';
    await put(broken);
    await writeFile(lastGoodPath(file), javaFile);
    await assert.rejects(
      store().load(),
      isCorrupt(
        file,
        'not valid JSON at line 3, column 31',
        `${file}.last-good`,
        'cp ',
        'left untouched',
      ),
    );
    assert.equal(await readFile(file, 'utf8'), broken);
    assert.equal(await readFile(lastGoodPath(file), 'utf8'), javaFile);
  });

  test('says when there is no last good copy', async () => {
    await put('{"cluster": ');
    await assert.rejects(store().load(), isCorrupt('no last good copy'));
    assert.equal(await readFile(file, 'utf8'), '{"cluster": ');
  });

  test('places the error of a truncated file at its end', async () => {
    await put('{\n  "cluster": {\n    "nodes": ["172.18');
    await assert.rejects(store().load(), isCorrupt('not valid JSON at line 3, column 22'));
  });

  test('reports an empty file as corrupt instead of recreating it', async () => {
    await put('');
    await assert.rejects(store().load(), isCorrupt('empty'));
    assert.equal(await readFile(file, 'utf8'), '');
  });

  test('reports a schema violation with the field, the value and the last good copy', async () => {
    const invalid = javaFile.replace('"172.18.135.12"', '"172.18.135"');
    await put(invalid);
    await writeFile(lastGoodPath(file), javaFile);
    await assert.rejects(
      store().load(),
      isCorrupt('schema', 'cluster.nodes[1]', '"172.18.135"', `${file}.last-good`),
    );
    assert.equal(await readFile(file, 'utf8'), invalid);
    assert.equal(await readFile(lastGoodPath(file), 'utf8'), javaFile);
  });
});

describe('ClusterStore.update', () => {
  test('records the previous membership in history and stamps the cluster with now', async () => {
    await put(javaFile);
    const updated = await store().update(withNodes([a, b, c, d]), 'grow to 4');
    assert.deepEqual(updated.cluster.nodes, [a, b, c, d]);
    assert.equal(updated.cluster.datetime, fixedNow.toISOString());
    assert.deepEqual(updated.history.at(-1), {
      datetime: fixedNow.toISOString(),
      nodes: [a, b, c],
      decommissionNodes: [d, '17.28.135.15'],
      reason: 'grow to 4',
    });
    assert.equal(updated.history.length, 2);
  });

  test('with dateFormat iso, rewrites the old Java dates as ISO-8601, indented by 2 with a trailing newline', async () => {
    await put(javaFile);
    const iso = new ClusterStore({ file, now: () => fixedNow, dateFormat: 'iso' });
    const updated = await iso.update((f) => f, 'normalise');
    const text = await readFile(file, 'utf8');
    assert.ok(!text.includes('GMT'), text);
    assert.equal(text, `${JSON.stringify(updated, null, 2)}\n`);
    const written = JSON.parse(text) as ClusterFile;
    assert.equal(written.history[0]?.datetime, '2018-10-24T03:19:25.000Z');
    assert.equal(written.cluster['uuid'], 'kept-by-us');
  });

  test('by default keeps the old Java date format when it writes the file back', async () => {
    await put(javaFile);
    await store().update((f) => f, 'normalise');
    const written = JSON.parse(await readFile(file, 'utf8')) as ClusterFile;
    assert.match(written.cluster.datetime, /^\w{3} \w{3} \d{2} \d{4} \d{2}:\d{2}:\d{2} GMT\+0800/);
    assert.equal(written.history[0]?.datetime, 'Wed Oct 24 2018 11:19:25 GMT+0800');
    assert.equal((await store().load()).history[0]?.datetime, '2018-10-24T03:19:25.000Z');
  });

  test('keeps the replaced bytes as .last-good and leaves no temp file', async () => {
    await put(javaFile);
    await store().update(withNodes([a, b]), 'shrink');
    assert.equal(await readFile(lastGoodPath(file), 'utf8'), javaFile);
    assert.deepEqual(await confEntries(), ['cluster.json', 'cluster.json.last-good']);
  });

  test('replaces the file by rename rather than rewriting it in place', async () => {
    await put(javaFile);
    const before = await stat(file);
    await store().update((f) => f, 'touch');
    assert.notEqual((await stat(file)).ino, before.ino);
  });

  test('creates the default first when the file is missing', async () => {
    const updated = await store().update(withNodes([a, b, c]), 'bootstrap');
    assert.deepEqual(updated.history, [
      {
        datetime: fixedNow.toISOString(),
        nodes: ['127.0.0.1'],
        decommissionNodes: [],
        reason: 'bootstrap',
      },
    ]);
    assert.equal(
      await readFile(lastGoodPath(file), 'utf8'),
      serializeClusterFile(defaultClusterFile(fixedNow)),
    );
  });

  test('records the membership from before a mutator that changed its argument in place', async () => {
    await put(javaFile);
    const updated = await store().update((f) => {
      f.cluster.nodes.push(d);
      return f;
    }, 'in place');
    assert.deepEqual(updated.cluster.nodes, [a, b, c, d]);
    assert.deepEqual(updated.history.at(-1)?.nodes, [a, b, c]);
  });

  test('refuses to write a corrupt file over, and keeps .last-good', async () => {
    await put('not json');
    await writeFile(lastGoodPath(file), javaFile);
    await assert.rejects(
      store().update((f) => f, 'x'),
      isCorrupt('not valid JSON'),
    );
    assert.equal(await readFile(file, 'utf8'), 'not json');
    assert.equal(await readFile(lastGoodPath(file), 'utf8'), javaFile);
  });

  test('writes nothing when the mutator makes the file invalid', async () => {
    await put(javaFile);
    await assert.rejects(
      store().update(withNodes([a, a]), 'duplicate'),
      (e: unknown) =>
        e instanceof ClusterGuardError &&
        e.type === 'InvalidInput' &&
        e.message.includes('duplicate node address') &&
        e.message.includes('nothing was written'),
    );
    assert.equal(await readFile(file, 'utf8'), javaFile);
    assert.deepEqual(await confEntries(), ['cluster.json']);
  });

  test('writes nothing when the mutator returns something other than a file', async () => {
    await put(javaFile);
    const bad = (() => undefined) as unknown as (f: ClusterFile) => ClusterFile;
    await assert.rejects(
      store().update(bad, 'oops'),
      (e: unknown) => e instanceof ClusterGuardError && e.type === 'InvalidInput',
    );
    assert.equal(await readFile(file, 'utf8'), javaFile);
  });

  test('refuses an empty reason', async () => {
    await assert.rejects(
      store().update((f) => f, '  '),
      (e: unknown) => e instanceof ClusterGuardError && e.type === 'InvalidInput',
    );
    assert.deepEqual(await readdir(dir), []);
  });

  test('keeps only the newest entries beyond the history cap', async () => {
    const base = defaultClusterFile(fixedNow);
    const history = Array.from({ length: historyLimit }, (_, i) => ({
      datetime: new Date(i * 1000).toISOString(),
      nodes: [a],
      decommissionNodes: [],
      reason: `old ${i}`,
    }));
    await put(serializeClusterFile({ ...base, history }));
    const updated = await store().update((f) => f, 'newest');
    assert.equal(updated.history.length, historyLimit);
    assert.equal(updated.history[0]?.reason, 'old 1');
    assert.equal(updated.history.at(-1)?.reason, 'newest');
    const written = JSON.parse(await readFile(file, 'utf8')) as ClusterFile;
    assert.equal(written.history.length, historyLimit);
  });

  test('serialises 20 concurrent updates so that none is lost', async () => {
    const s = store();
    await s.load();
    const reasons = Array.from({ length: 20 }, (_, i) => `update ${i}`);
    await Promise.all(
      reasons.map((reason) =>
        s.update(async (f) => {
          // Yield mid-update so that unserialised updates would interleave and lose writes.
          await new Promise((r) => setTimeout(r, 1));
          return { ...f, counter: Number(f['counter'] ?? 0) + 1 };
        }, reason),
      ),
    );
    const final = await s.load();
    assert.equal(final['counter'], 20);
    assert.deepEqual(
      final.history.map((h) => h.reason),
      reasons,
    );
    assert.deepEqual(await confEntries(), ['cluster.json', 'cluster.json.last-good']);
  });

  test('serialises updates across two store instances on the same file', async () => {
    const first = store();
    const second = new ClusterStore({ file: path.join(dir, 'conf', '..', 'conf', 'cluster.json') });
    const bump = (f: ClusterFile) =>
      new Promise<ClusterFile>((r) =>
        setTimeout(() => r({ ...f, counter: Number(f['counter'] ?? 0) + 1 }), 2),
      );
    await Promise.all([
      first.update(bump, 'one'),
      second.update(bump, 'two'),
      first.update(bump, 'three'),
    ]);
    const final = await first.load();
    assert.equal(final['counter'], 3);
    assert.deepEqual(final.history.map((h) => h.reason).sort(), ['one', 'three', 'two']);
  });

  test('goes on with later updates after a mutator throws', async () => {
    const s = store();
    const failed = s.update(() => {
      throw new Error('boom');
    }, 'fails');
    const next = s.update(withNodes([a, b, c]), 'after');
    await assert.rejects(failed, /boom/);
    assert.deepEqual((await next).cluster.nodes, [a, b, c]);
    assert.deepEqual(
      (await s.load()).history.map((h) => h.reason),
      ['after'],
    );
  });
});
