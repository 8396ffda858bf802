import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import zlib from 'node:zlib';
import yauzl from 'yauzl';
import { defaultExtractLimits, extractZip, tableCrc32, zipFolder } from '../../src/archive/zip.js';
import { ClusterGuardError } from '../../src/contracts/errors.js';

interface RawEntry {
  name: string;
  data?: Buffer;
  /** 0 stored, 8 deflated. */
  method?: 0 | 8;
  /** Unix mode in the upper 16 bits of the external attributes. */
  unixMode?: number;
  /** A lie in both headers about the inflated size. */
  declaredSize?: number;
  /** A lie about the CRC-32. */
  crc?: number;
}

/**
 * Writes a zip byte by byte, because archiver (rightly) normalises away the names these tests
 * need: it strips leading `../` and `/` and drive letters.
 */
function rawZip(entries: RawEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const method = e.method ?? 0;
    const stored = method === 8 ? zlib.deflateRawSync(data) : data;
    const name = Buffer.from(e.name, 'utf8');
    const crc = e.crc ?? zlib.crc32(data);
    const size = e.declaredSize ?? data.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6); // names are UTF-8
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(stored.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(stored.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(((e.unixMode ?? 0o100644) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, stored);
    centrals.push(central, name);
    offset += local.length + name.length + stored.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

async function entryNames(file: string): Promise<string[]> {
  const zip = await yauzl.openPromise(file, { lazyEntries: true });
  const names: string[] = [];
  for await (const entry of zip.eachEntry()) names.push(entry.fileName);
  return names;
}

async function treeOf(folder: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const rel of await readdir(folder, { recursive: true })) {
    const full = path.join(folder, rel);
    if ((await stat(full)).isFile())
      out[rel.split(path.sep).join('/')] = await readFile(full, 'hex');
  }
  return out;
}

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cg-zip-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('zipFolder and extractZip', () => {
  async function sampleFolder(): Promise<string> {
    const src = path.join(dir, 'src');
    await mkdir(path.join(src, 'cockroach', 'certs'), { recursive: true });
    await mkdir(path.join(src, 'kafka', 'conf', 'deep', 'er'), { recursive: true });
    await writeFile(path.join(src, 'cockroach', 'certs', 'node.key'), 'secret key\n', {
      mode: 0o600,
    });
    await chmod(path.join(src, 'cockroach', 'certs', 'node.key'), 0o600);
    await writeFile(path.join(src, 'kafka', 'conf', 'server.properties'), 'node.id=2\n');
    await writeFile(path.join(src, 'kafka', 'conf', 'deep', 'er', 'blob.bin'), randomBytes(70_000));
    await writeFile(path.join(src, 'top.txt'), '');
    return src;
  }

  test('round trip: every file, nested folders, content and key file modes survive', async () => {
    const src = await sampleFolder();
    const target = path.join(dir, 'dist', '127.0.0.12.zip');
    const zipped = await zipFolder(src, target);
    assert.equal(zipped.file, target);
    assert.equal(zipped.entries, 4);
    assert.deepEqual(zipped.skipped, []);
    const bytes = await readFile(target);
    assert.equal(zipped.bytes, bytes.length);
    assert.equal(zipped.sha256, createHash('sha256').update(bytes).digest('hex'));
    assert.deepEqual(await entryNames(target), [
      'cockroach/certs/node.key',
      'kafka/conf/deep/er/blob.bin',
      'kafka/conf/server.properties',
      'top.txt',
    ]);
    // Nothing but the archive beside it: the temp file was renamed, not left over.
    assert.deepEqual(await readdir(path.dirname(target)), ['127.0.0.12.zip']);

    const dest = path.join(dir, 'out', 'cfg');
    await mkdir(dest, { recursive: true });
    await writeFile(path.join(dest, 'stale.txt'), 'from an earlier archive');
    const extracted = await extractZip(target, dest);
    assert.equal(extracted.entries, 4);
    assert.equal(extracted.bytes, 'secret key\n'.length + 'node.id=2\n'.length + 70_000);
    assert.deepEqual(await treeOf(dest), await treeOf(src));
    assert.equal(
      (await stat(path.join(dest, 'cockroach', 'certs', 'node.key'))).mode & 0o777,
      0o600,
    );
    assert.equal((await stat(dest)).mode & 0o777, 0o755);
    assert.deepEqual(await readdir(path.dirname(dest)), ['cfg']);
  });

  test('the same content gives the same archive bytes, whatever the files’ mtimes', async () => {
    const src = await sampleFolder();
    const first = await zipFolder(src, path.join(dir, 'a.zip'));
    await utimes(path.join(src, 'top.txt'), new Date('2030-01-01'), new Date('2030-01-01'));
    const second = await zipFolder(src, path.join(dir, 'b.zip'));
    assert.equal(second.sha256, first.sha256);
    await writeFile(path.join(src, 'top.txt'), 'changed');
    const third = await zipFolder(src, path.join(dir, 'a.zip'));
    assert.notEqual(third.sha256, first.sha256);
    assert.equal(
      third.sha256,
      createHash('sha256')
        .update(await readFile(path.join(dir, 'a.zip')))
        .digest('hex'),
    );
  });

  test('symlinks are skipped, never followed, and reported', async () => {
    const src = await sampleFolder();
    const outside = path.join(dir, 'outside-secret');
    await writeFile(outside, 'must not travel');
    await symlink(outside, path.join(src, 'kafka', 'conf', 'link'));
    const zipped = await zipFolder(src, path.join(dir, 'l.zip'));
    assert.deepEqual(zipped.skipped, ['kafka/conf/link']);
    assert.equal(zipped.entries, 4);
    assert.ok(!(await entryNames(zipped.file)).includes('kafka/conf/link'));
    assert.ok(!(await readFile(zipped.file)).includes('must not travel'));
  });

  test('a missing folder is InvalidInput naming it, and writes nothing', async () => {
    const missing = path.join(dir, 'nope');
    await assert.rejects(zipFolder(missing, path.join(dir, 'out', 'x.zip')), (err) => {
      assert.ok(err instanceof ClusterGuardError);
      assert.equal(err.type, 'InvalidInput');
      assert.ok(err.message.includes(missing), err.message);
      return true;
    });
    await assert.rejects(stat(path.join(dir, 'out', 'x.zip')), { code: 'ENOENT' });
  });

  test('an archive inside the folder it zips is refused', async () => {
    const src = await sampleFolder();
    await assert.rejects(zipFolder(src, path.join(src, 'self.zip')), /outside the folder/);
  });

  test('the default limits are 10 000 entries and 512 MiB', () => {
    assert.deepEqual(defaultExtractLimits, { maxEntries: 10_000, maxBytes: 512 * 1024 * 1024 });
  });

  test('the JavaScript CRC-32 fallback agrees with zlib', () => {
    const data = randomBytes(10_000);
    assert.equal(tableCrc32(data), zlib.crc32(data));
    const [a, b] = [data.subarray(0, 3333), data.subarray(3333)];
    assert.equal(tableCrc32(b, tableCrc32(a)), zlib.crc32(data));
  });
});

describe('extractZip refuses unsafe archives and leaves dest untouched', () => {
  let dest: string;

  beforeEach(async () => {
    dest = path.join(dir, 'work', 'dest');
    await mkdir(dest, { recursive: true });
    await writeFile(path.join(dest, 'keep.txt'), 'the configuration in use');
  });

  async function assertRefused(
    zip: Buffer,
    expected: RegExp,
    limits?: { maxEntries?: number; maxBytes?: number },
  ): Promise<void> {
    const file = path.join(dir, 'evil.zip');
    await writeFile(file, zip);
    await assert.rejects(extractZip(file, dest, limits), (err) => {
      assert.ok(err instanceof ClusterGuardError, String(err));
      assert.equal(err.type, 'UnsafeArchive');
      assert.ok(err.message.includes(file), `names the archive: ${err.message}`);
      assert.match(err.message, expected);
      return true;
    });
    assert.deepEqual(await treeOf(dest), {
      'keep.txt': Buffer.from('the configuration in use').toString('hex'),
    });
    // No half-extracted temp folder beside dest, and nothing escaped next to it.
    assert.deepEqual(await readdir(path.dirname(dest)), ['dest']);
    assert.deepEqual((await readdir(dir)).sort(), ['evil.zip', 'work']);
  }

  const ok = (name: string): RawEntry => ({ name, data: Buffer.from(`content of ${name}`) });

  test('a `..` entry', async () => {
    await assertRefused(
      rawZip([ok('a.txt'), ok('../evil')]),
      /entry "\.\.\/evil" has a "\.\." segment/,
    );
  });

  test('a `..` segment in the middle', async () => {
    await assertRefused(rawZip([ok('a/../../evil')]), /entry "a\/\.\.\/\.\.\/evil" has a "\.\."/);
  });

  test('an absolute path', async () => {
    await assertRefused(rawZip([ok('/etc/x')]), /entry "\/etc\/x" is an absolute path/);
  });

  test('a drive letter', async () => {
    await assertRefused(rawZip([ok('C:/windows/x')]), /entry "C:\/windows\/x" starts with a drive/);
  });

  test('a backslash', async () => {
    await assertRefused(rawZip([ok('..\\evil')]), /entry "\.\.\\\\evil" has a backslash/);
  });

  test('a symlink entry', async () => {
    await assertRefused(
      rawZip([ok('a.txt'), { name: 'link', data: Buffer.from('/etc/passwd'), unixMode: 0o120777 }]),
      /entry "link" is a symbolic link/,
    );
  });

  test('a duplicate entry, also when spelt differently', async () => {
    await assertRefused(
      rawZip([ok('a/b.txt'), ok('c.txt'), ok('a/b.txt')]),
      /entry "a\/b\.txt" is a duplicate/,
    );
    await assertRefused(rawZip([ok('a/b.txt'), ok('a/./b.txt')]), /entry "a\/\.\/b\.txt" is a dup/);
  });

  test('a file and a folder of the same name', async () => {
    await assertRefused(rawZip([ok('a'), ok('a/b')]), /entry "a\/b" conflicts/);
  });

  test('more entries than the limit', async () => {
    await assertRefused(rawZip([ok('1'), ok('2'), ok('3')]), /3 entries, more than .* 2/, {
      maxEntries: 2,
    });
  });

  test('more bytes than the limit', async () => {
    await assertRefused(
      rawZip([ok('small'), { name: 'big', data: Buffer.alloc(200, 1) }]),
      /entry "big" would take the total past the limit of 100 bytes/,
      { maxBytes: 100 },
    );
  });

  test('a zip bomb: 64 MiB of zeros in a few KiB', async () => {
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    const bomb = rawZip([{ name: 'bomb', data: zeros, method: 8 }]);
    assert.ok(bomb.length < 200_000, `the bomb is ${bomb.length} bytes`);
    await assertRefused(bomb, /entry "bomb" .*limit of 1048576 bytes/, { maxBytes: 1024 * 1024 });
  });

  test('a bomb whose headers lie about its size is stopped by what it inflates to', async () => {
    const zeros = Buffer.alloc(16 * 1024 * 1024);
    const liar = rawZip([{ name: 'liar', data: zeros, method: 8, declaredSize: 10 }]);
    await assertRefused(liar, /entry "liar" is corrupt: too many bytes/, {
      maxBytes: 1024 * 1024,
    });
  });

  test('an entry whose data fails its CRC-32', async () => {
    await assertRefused(
      rawZip([{ name: 'x.txt', data: Buffer.from('hello'), crc: 1234 }]),
      /entry "x\.txt" fails its CRC-32 check/,
    );
  });

  test('a file that is not a zip at all', async () => {
    await assertRefused(
      Buffer.from('<html>502 Bad Gateway</html>\n'.repeat(10)),
      /not a zip archive/,
    );
  });

  test('a truncated zip', async () => {
    const whole = rawZip([ok('a.txt'), ok('b.txt')]);
    await assertRefused(whole.subarray(0, whole.length - 30), /not a zip archive|corrupt/);
  });

  test('a missing archive is InvalidInput, not a refusal', async () => {
    await assert.rejects(extractZip(path.join(dir, 'none.zip'), dest), (err) => {
      assert.ok(err instanceof ClusterGuardError);
      assert.equal(err.type, 'InvalidInput');
      return true;
    });
    assert.deepEqual(await readdir(dest), ['keep.txt']);
  });

  test('a hand-written archive that is safe is extracted (the writer itself is sound)', async () => {
    const file = path.join(dir, 'good.zip');
    await writeFile(
      file,
      rawZip([ok('x/y.txt'), { name: 'x/z/', unixMode: 0o040755 }, { ...ok('d'), method: 8 }]),
    );
    const result = await extractZip(file, dest);
    assert.equal(result.entries, 3);
    assert.equal(await readFile(path.join(dest, 'x', 'y.txt'), 'utf8'), 'content of x/y.txt');
    assert.equal(await readFile(path.join(dest, 'd'), 'utf8'), 'content of d');
    assert.ok((await stat(path.join(dest, 'x', 'z'))).isDirectory());
    await assert.rejects(stat(path.join(dest, 'keep.txt')), { code: 'ENOENT' });
  });
});
