import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ClusterGuardError } from '../contracts/errors.js';
import { describeZodError } from '../contracts/validation.js';

/**
 * Payload encryption, so that passwords and tokens in runbook inputs, results, details and
 * events never reach Temporal's history (or its Web UI) in clear. AES-256-GCM; each encrypted
 * payload names the key it was encrypted with, so keys rotate: the current key encrypts, every
 * key of the ring still decrypts.
 */
export const encryptedEncoding = 'binary/encrypted';
export const keyIdMetadataKey = 'encryption-key-id';
const ivBytes = 12;
const tagBytes = 16;

export interface KeyRing {
  /** The key id new payloads are encrypted with. */
  current: string;
  /** Every key that may still decrypt, by id: 32 bytes each. */
  keys: ReadonlyMap<string, Buffer>;
}

const keyIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const keyRingFileSchema = z
  .object({
    current: z.string().regex(keyIdPattern, 'a key id: letters, digits, ".", "_", "-"'),
    keys: z.record(
      z.string().regex(keyIdPattern, 'a key id: letters, digits, ".", "_", "-"'),
      z.string().min(1),
    ),
  })
  .strict();

function keyBytes(id: string, text: string): Buffer {
  const bytes = Buffer.from(text.trim(), 'base64');
  if (bytes.length !== 32) {
    throw new ClusterGuardError(
      'InvalidConfig',
      `encryption key ${id} is ${bytes.length} bytes once base64-decoded; AES-256 needs 32 ` +
        '(make one with: openssl rand -base64 32)',
    );
  }
  return bytes;
}

/**
 * A key ring from `{ current, keys: { <id>: <base64 of 32 bytes> } }`, as a YAML/JSON file or
 * as the environment's `id=base64,id=base64` list; the current key must be in the ring.
 */
export function keyRingFrom(raw: unknown, where: string): KeyRing {
  const parsed = keyRingFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ClusterGuardError(
      'InvalidConfig',
      `${where}: not a key ring ({ current, keys: { <id>: <base64> } }): ${describeZodError(parsed.error)}`,
    );
  }
  const keys = new Map(
    Object.entries(parsed.data.keys).map(([id, text]) => [id, keyBytes(id, text)] as const),
  );
  if (!keys.has(parsed.data.current)) {
    throw new ClusterGuardError(
      'InvalidConfig',
      `${where}: the current key ${parsed.data.current} is not among the keys (${[...keys.keys()].join(', ')})`,
    );
  }
  return { current: parsed.data.current, keys };
}

/** `id=base64,id=base64` (the environment's form) → the key map of a ring. */
export function parseKeyList(list: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const at = item.indexOf('=');
    if (at <= 0) {
      throw new ClusterGuardError(
        'InvalidConfig',
        'encryption keys must be listed as <id>=<base64>,<id>=<base64>',
      );
    }
    out[item.slice(0, at)] = item.slice(at + 1);
  }
  return out;
}

export async function loadKeyRing(file: string): Promise<KeyRing> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ClusterGuardError(
      'InvalidConfig',
      `cannot read the encryption key ring ${file}: ${(err as Error).message}`,
    );
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ClusterGuardError(
      'InvalidConfig',
      `${file} is not YAML or JSON: ${(err as Error).message}`,
    );
  }
  return keyRingFrom(raw, file);
}

/** Payload (metadata and data as bytes) ↔ bytes, the plaintext that is encrypted. */
function serialize(payload: Payload): Buffer {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(payload.metadata ?? {})) {
    if (v) metadata[k] = Buffer.from(v).toString('base64');
  }
  return Buffer.from(
    JSON.stringify({
      m: metadata,
      d: Buffer.from(payload.data ?? new Uint8Array()).toString('base64'),
    }),
  );
}

function deserialize(bytes: Buffer): Payload {
  const { m, d } = JSON.parse(bytes.toString('utf8')) as { m: Record<string, string>; d: string };
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(m)) metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(d, 'base64') };
}

export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly ring: KeyRing) {}

  // A refusal must be a rejected promise, never a synchronous throw: hence the `then`.
  encode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve().then(() => this.seal(payloads));
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve().then(() => this.open(payloads));
  }

  private seal(payloads: Payload[]): Payload[] {
    const key = this.ring.keys.get(this.ring.current);
    if (!key) throw new Error(`the current key ${this.ring.current} is not in the ring`);
    return payloads.map((p) => {
      const iv = randomBytes(ivBytes);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      // The key id is authenticated too: a payload cannot be relabelled with another key.
      cipher.setAAD(Buffer.from(this.ring.current));
      const sealed = Buffer.concat([cipher.update(serialize(p)), cipher.final()]);
      return {
        metadata: {
          encoding: Buffer.from(encryptedEncoding),
          [keyIdMetadataKey]: Buffer.from(this.ring.current),
        },
        data: Buffer.concat([iv, sealed, cipher.getAuthTag()]),
      };
    });
  }

  private open(payloads: Payload[]): Payload[] {
    return payloads.map((p) => {
      const encoding = p.metadata?.encoding ? Buffer.from(p.metadata.encoding).toString() : '';
      // Payloads written before encryption was turned on stay readable.
      if (encoding !== encryptedEncoding) return p;
      const rawId = p.metadata?.[keyIdMetadataKey];
      const id = rawId ? Buffer.from(rawId).toString() : '';
      const key = this.ring.keys.get(id);
      if (!key) {
        throw new ClusterGuardError(
          'InvalidConfig',
          `a payload is encrypted with key "${id}", which this process's key ring does not hold ` +
            `(it holds ${[...this.ring.keys.keys()].join(', ')}): add that key to the ring (codec.keyFile or CG_CODEC__KEYS)`,
        );
      }
      const data = Buffer.from(p.data ?? new Uint8Array());
      if (data.length < ivBytes + tagBytes) {
        throw new ClusterGuardError(
          'InvalidConfig',
          `an encrypted payload (key ${id}) is truncated`,
        );
      }
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, ivBytes));
      decipher.setAAD(Buffer.from(id));
      decipher.setAuthTag(data.subarray(data.length - tagBytes));
      let plain: Buffer;
      try {
        plain = Buffer.concat([
          decipher.update(data.subarray(ivBytes, data.length - tagBytes)),
          decipher.final(),
        ]);
      } catch {
        throw new ClusterGuardError(
          'InvalidConfig',
          `a payload encrypted with key "${id}" does not decrypt with this ring's key "${id}": ` +
            'the key was changed under the same id, or the payload was altered',
        );
      }
      return deserialize(plain);
    });
  }
}
