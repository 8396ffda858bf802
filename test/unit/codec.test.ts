import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import { createCodecApp } from '../../src/temporal/codec-server.js';
import {
  EncryptionCodec,
  encryptedEncoding,
  keyRingFrom,
  parseKeyList,
} from '../../src/client/codec.js';

const key = () => randomBytes(32).toString('base64');
const ring = (current: string, keys: Record<string, string>) =>
  keyRingFrom({ current, keys }, 'test ring');
const payload = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);
const text = (p: Payload) => Buffer.from(p.data ?? new Uint8Array()).toString('latin1');

describe('the payload encryption codec', () => {
  const k1 = key();
  const k2 = key();
  const secret = { password: 'hunter2-super-secret', nested: { token: 'tok-123456' } };

  test('round trip: what is encrypted decodes to the same payload, and holds no clear text', async () => {
    const codec = new EncryptionCodec(ring('k1', { k1 }));
    const [sealed] = await codec.encode([payload(secret)]);
    assert.ok(sealed);
    assert.equal(Buffer.from(sealed.metadata?.encoding ?? []).toString(), encryptedEncoding);
    assert.ok(!text(sealed).includes('hunter2'), 'no clear text in the data');
    assert.ok(!JSON.stringify(sealed).includes('hunter2'));
    const [opened] = await codec.decode([sealed]);
    assert.ok(opened);
    assert.deepEqual(defaultPayloadConverter.fromPayload(opened), secret);
    // A fresh IV each time: the same value never gives the same bytes.
    const [again] = await codec.encode([payload(secret)]);
    assert.notDeepEqual(again?.data, sealed.data);
  });

  test('a payload that is not encrypted passes through decode (history from before)', async () => {
    const codec = new EncryptionCodec(ring('k1', { k1 }));
    const plain = payload('old');
    assert.deepEqual(await codec.decode([plain]), [plain]);
  });

  test('the wrong key is refused with a clear error, as is an altered payload', async () => {
    const [sealed] = await new EncryptionCodec(ring('k1', { k1 })).encode([payload(secret)]);
    assert.ok(sealed);
    const other = new EncryptionCodec(ring('k2', { k2 }));
    await assert.rejects(other.decode([sealed]), (err) => {
      assert.ok(err instanceof ClusterGuardError);
      assert.match(
        err.message,
        /encrypted with key "k1", which this process's key ring does not hold \(it holds k2\)/,
      );
      return true;
    });
    const impostor = new EncryptionCodec(ring('k1', { k1: k2 }));
    await assert.rejects(impostor.decode([sealed]), /does not decrypt with this ring's key "k1"/);
    const data = Buffer.from(sealed.data ?? []);
    data[20] = (data[20] ?? 0) ^ 1;
    await assert.rejects(
      new EncryptionCodec(ring('k1', { k1 })).decode([{ ...sealed, data }]),
      /altered/,
    );
  });

  test('rotation: the new key encrypts, the old one still decrypts', async () => {
    const [old] = await new EncryptionCodec(ring('k1', { k1 })).encode([payload('before')]);
    const rotated = new EncryptionCodec(ring('k2', { k1, k2 }));
    const [fresh] = await rotated.encode([payload('after')]);
    assert.equal(Buffer.from(fresh?.metadata?.['encryption-key-id'] ?? []).toString(), 'k2');
    const decoded = await rotated.decode([old as Payload, fresh as Payload]);
    assert.deepEqual(
      decoded.map((p) => defaultPayloadConverter.fromPayload(p)),
      ['before', 'after'],
    );
  });

  test('bad key rings are configuration errors that say what to do', () => {
    assert.throws(
      () => ring('k1', { k1: Buffer.alloc(16).toString('base64') }),
      /16 bytes.*needs 32.*openssl rand/,
    );
    assert.throws(() => ring('k3', { k1 }), /current key k3 is not among the keys \(k1\)/);
    assert.throws(() => keyRingFrom({ keys: { k1 } }, 'f.yaml'), /f\.yaml: not a key ring/);
    assert.deepEqual(parseKeyList(`a=${k1}, b=${k2}`), { a: k1, b: k2 });
    assert.throws(() => parseKeyList('justakey'), /<id>=<base64>/);
  });
});

describe('the codec endpoint for the Web UI', () => {
  const token = 'operator-token-0123456789';
  const codec = new EncryptionCodec(ring('k1', { k1: key() }));
  const app = createCodecApp({
    codec,
    token,
    allowOrigins: ['http://127.0.0.1:8233'],
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  const post = (route: string, body: unknown, auth: string | null = token) =>
    app.request(route, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        origin: 'http://127.0.0.1:8233',
        ...(auth === null ? {} : { authorization: `Bearer ${auth}` }),
      },
      body: JSON.stringify(body),
    });
  const asJson = (p: Payload) => ({
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
    data: Buffer.from(p.data ?? []).toString('base64'),
  });

  test('decodes what the processes encrypted, for the UI origin, with the operator token', async () => {
    const [sealed] = await codec.encode([payload({ password: 'hunter2' })]);
    assert.ok(sealed);
    const res = await post('/decode', { payloads: [asJson(sealed)] });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://127.0.0.1:8233');
    const body = (await res.json()) as { payloads: { data: string }[] };
    assert.deepEqual(JSON.parse(Buffer.from(body.payloads[0]?.data ?? '', 'base64').toString()), {
      password: 'hunter2',
    });
    const encoded = (await (
      await post('/encode', { payloads: [asJson(payload('x'))] })
    ).json()) as {
      payloads: { metadata: Record<string, string> }[];
    };
    assert.equal(
      Buffer.from(encoded.payloads[0]?.metadata.encoding ?? '', 'base64').toString(),
      encryptedEncoding,
    );
  });

  test('refuses a request without the token, and a body that is not payloads', async () => {
    assert.equal((await post('/decode', { payloads: [] }, null)).status, 401);
    assert.equal((await post('/decode', { payloads: [] }, 'wrong-token-xxxxxxxxx')).status, 401);
    assert.equal((await post('/decode', { nope: 1 })).status, 400);
  });
});
