import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Kafka, Message } from 'kafkajs';
import type { MessageLine } from '../../src/middleware/kafka/dump-format.js';
import { createKafkaLoad } from '../../src/middleware/kafka/load.js';
import { fingerprintOfLine } from '../../src/middleware/kafka/resume.js';

/**
 * How a retried import decides what to send (src/middleware/kafka/resume.ts), without a broker:
 * the dump is sent from the line after the acknowledged ones, and per partition the lines found,
 * in order, among the messages already beyond them are not sent again.
 */
let dir: string;
const b64 = (s: string) => Buffer.from(s).toString('base64');
/** Twelve lines over three partitions: line i goes to partition i % 3. */
const lines: MessageLine[] = Array.from({ length: 12 }, (_, i) => ({
  partition: i % 3,
  offset: String(Math.floor(i / 3)),
  timestamp: String(1_700_000_000_000 + i),
  key: b64(`k${i}`),
  value: b64(`v${i}`),
  headers: [['seq', b64(String(i))]],
}));

/** A producer that records what it was asked to send, and fails when told to. */
function recorder(failAfterSends = Infinity) {
  const sent: Message[][] = [];
  const producer = {
    send: ({ messages }: { messages: Message[] }) => {
      if (sent.length >= failAfterSends) return Promise.reject(new Error('broker gone'));
      sent.push(messages);
      return Promise.resolve([]);
    },
  } as unknown as ReturnType<Kafka['producer']>;
  return { producer, sent };
}

const sentKeys = (sent: Message[][]) => sent.flat().map((m) => String(m.key));
// produceFile uses neither the broker nor the adapter's state.
const load = createKafkaLoad({} as never);
let file: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cg-kafka-resume-'));
  file = path.join(dir, 'topic.jsonl');
  await writeFile(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a first attempt sends every line to its partition and reports each batch', async () => {
  const { producer, sent } = recorder();
  const reports: [number, [number, number][]][] = [];
  const r = await load.produceFile(producer, file, 'topic', 3, undefined, (n, dealt) => {
    reports.push([n, [...dealt].sort()]);
    return Promise.resolve();
  });
  assert.deepEqual(r, { lines: 12, sent: 12, found: 0 });
  assert.deepEqual(
    sentKeys(sent),
    lines.map((_, i) => `k${i}`),
  );
  assert.deepEqual(
    sent.flat().map((m) => m.partition),
    lines.map((l) => l.partition),
  );
  assert.deepEqual(reports, [
    [
      12,
      [
        [0, 4],
        [1, 4],
        [2, 4],
      ],
    ],
  ]);
});

test('a retry skips the acknowledged lines and what it finds written beyond them', async () => {
  const { producer, sent } = recorder();
  // Lines 0–3 acknowledged; the batch in flight (4–8) reached partitions 1 and 2 but not 0;
  // another producer wrote to partition 2 in between.
  const written = new Map<number, string[]>([
    [1, [fingerprintOfLine(lines[4]!), fingerprintOfLine(lines[7]!)]],
    [
      2,
      [
        fingerprintOfLine(lines[5]!),
        fingerprintOfLine({ key: b64('x'), value: b64('other'), headers: [] }),
        fingerprintOfLine(lines[8]!),
      ],
    ],
  ]);
  const r = await load.produceFile(producer, file, 'topic', 3, { from: 4, written });
  assert.deepEqual(r, { lines: 12, sent: 4, found: 4 });
  assert.deepEqual(sentKeys(sent), ['k6', 'k9', 'k10', 'k11']);
});

test('a partition is searched no further once a line is not found there', async () => {
  const { producer, sent } = recorder();
  // Partition 0 holds line 3, then another producer's message: line 6 is not there, so the
  // attempt wrote nothing more of partition 0, and 6 and 9 are sent.
  const written = new Map<number, string[]>([
    [
      0,
      [
        fingerprintOfLine(lines[3]!),
        fingerprintOfLine({ key: b64('x'), value: b64('y'), headers: [] }),
      ],
    ],
  ]);
  const r = await load.produceFile(producer, file, 'topic', 3, { from: 3, written });
  assert.deepEqual(r, { lines: 12, sent: 8, found: 1 });
  assert.deepEqual(sentKeys(sent), ['k4', 'k5', 'k6', 'k7', 'k8', 'k9', 'k10', 'k11']);
});

test('a batch that fails is not reported acknowledged', async () => {
  const big = path.join(dir, 'big.jsonl');
  const many = Array.from({ length: 1200 }, (_, i) => ({ ...lines[0]!, key: b64(`k${i}`) }));
  await writeFile(big, many.map((l) => JSON.stringify(l)).join('\n'));
  const { producer } = recorder(1);
  const reported: number[] = [];
  await assert.rejects(
    load.produceFile(producer, big, 'topic', 3, undefined, (n) => {
      reported.push(n);
      return Promise.resolve();
    }),
    /broker gone/,
  );
  assert.deepEqual(reported, [500], 'only the batch the broker took');
});

test('headers compare by name: a repeated header sent grouped still matches', () => {
  const interleaved = {
    key: null,
    value: b64('v'),
    headers: [
      ['a', b64('1')],
      ['b', b64('2')],
      ['a', b64('3')],
    ] as [string, string][],
  };
  const grouped = {
    ...interleaved,
    headers: [
      ['a', b64('1')],
      ['a', b64('3')],
      ['b', b64('2')],
    ] as [string, string][],
  };
  assert.equal(fingerprintOfLine(interleaved), fingerprintOfLine(grouped));
  assert.notEqual(
    fingerprintOfLine(interleaved),
    fingerprintOfLine({ ...grouped, headers: grouped.headers.slice(1) }),
  );
});
