import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, Partitioners, type Admin } from 'kafkajs';
import { zookeeper } from '../../src/middleware/zookeeper/client.js';

/**
 * A client that writes to ZooKeeper and produces to Kafka (acks=all) all the time, keeping only
 * what the servers acknowledged, then reads everything back: the measure of "nothing lost".
 * Writes go to whichever member answers; a write that fails is not counted (a client would
 * retry it), one that is acknowledged must be readable at the end.
 */
export interface TrafficOptions {
  /** Members to talk to; `setNodes` changes them as the membership changes. */
  nodes: string[];
  zkPort?: number;
  kafkaPort?: number;
  topic: string;
  /** Znodes are created under this path (made if missing). */
  zkPath: string;
  partitions?: number;
  replicationFactor?: number;
  /** Pause between two rounds of one ZooKeeper write and one Kafka send. */
  intervalMs?: number;
}

export interface TrafficReport {
  zkAcknowledged: number;
  kafkaAcknowledged: number;
  zkLost: string[];
  kafkaLost: string[];
  /** Partitions (of every topic) without a leader or with fewer in-sync replicas than replicas. */
  notInSync: string[];
}

export function kafkaClient(nodes: readonly string[], port = 9092, clientId = 'traffic'): Kafka {
  return new Kafka({
    clientId,
    brokers: nodes.map((n) => `${n}:${port}`),
    logLevel: logLevel.NOTHING,
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1000 },
    connectionTimeout: 3000,
    requestTimeout: 10_000,
  });
}

function zkSession<T>(
  hosts: string,
  timeoutMs: number,
  fn: (zk: zookeeper.Client) => Promise<T>,
): Promise<T> {
  const client = zookeeper.createClient(hosts, { sessionTimeout: 10_000, spinDelay: 300 });
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`no ZooKeeper session on ${hosts} within ${timeoutMs} ms`));
    }, timeoutMs);
    client.once('connected', () => {
      clearTimeout(timer);
      fn(client)
        .then(resolve, reject)
        .finally(() => client.close());
    });
    client.connect();
  });
}

const zkCall = <T>(fn: (cb: (err: Error | null, value?: T) => void) => void) =>
  new Promise<T>((res, rej) => fn((err, value) => (err ? rej(err) : res(value as T))));

export class Traffic {
  private nodes: string[];
  private stopped = false;
  private loop?: Promise<void>;
  readonly zkAcked: string[] = [];
  readonly kafkaAcked: string[] = [];
  zkFailures = 0;
  kafkaFailures = 0;

  constructor(private readonly o: TrafficOptions) {
    this.nodes = [...o.nodes];
  }

  private get zkPort() {
    return this.o.zkPort ?? 2181;
  }
  private get kafkaPort() {
    return this.o.kafkaPort ?? 9092;
  }

  setNodes(nodes: string[]): void {
    this.nodes = [...nodes];
  }

  /** Creates the topic and the parent znode (waiting until both serve), then starts writing. */
  async start(): Promise<void> {
    await zkSession(this.zkHosts(), 30_000, async (zk) => {
      try {
        await zkCall<string>((cb) => zk.create(this.o.zkPath, Buffer.alloc(0), 0, cb));
      } catch (err) {
        if ((err as { code?: number }).code !== zookeeper.Exception.NODE_EXISTS) throw err;
      }
    });
    await this.withAdmin(async (admin) => {
      const existing = await admin.listTopics();
      if (!existing.includes(this.o.topic))
        await admin.createTopics({
          waitForLeaders: false,
          topics: [
            {
              topic: this.o.topic,
              numPartitions: this.o.partitions ?? 3,
              replicationFactor: this.o.replicationFactor ?? 3,
            },
          ],
        });
    });
    const deadline = Date.now() + 60_000;
    while ((await this.describe()).some((p) => p.leader < 0) && Date.now() < deadline)
      await sleep(300);
    this.loop = this.run();
  }

  private zkHosts(): string {
    return this.nodes.map((n) => `${n}:${this.zkPort}`).join(',');
  }

  private async withAdmin<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = kafkaClient(this.nodes, this.kafkaPort, 'traffic-admin').admin();
    await admin.connect();
    try {
      return await fn(admin);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private async run(): Promise<void> {
    let i = 0;
    let producer = kafkaClient(this.nodes, this.kafkaPort).producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: 1, initialRetryTime: 200 },
    });
    let connected = false;
    while (!this.stopped) {
      i++;
      const name = `w${i}`;
      try {
        await zkSession(this.zkHosts(), 4000, (zk) =>
          zkCall<string>((cb) => zk.create(`${this.o.zkPath}/${name}`, Buffer.from(name), 0, cb)),
        );
        this.zkAcked.push(name);
      } catch {
        this.zkFailures++;
      }
      const value = `m${i}`;
      try {
        if (!connected) {
          producer = kafkaClient(this.nodes, this.kafkaPort).producer({
            createPartitioner: Partitioners.DefaultPartitioner,
            retry: { retries: 1, initialRetryTime: 200 },
          });
          await producer.connect();
          connected = true;
        }
        // Keyed by round so that every partition gets messages.
        await producer.send({
          topic: this.o.topic,
          acks: -1,
          timeout: 5000,
          messages: [{ key: String(i), value }],
        });
        this.kafkaAcked.push(value);
      } catch {
        this.kafkaFailures++;
        // A fresh producer picks up the current members and metadata.
        await producer.disconnect().catch(() => undefined);
        connected = false;
      }
      await sleep(this.o.intervalMs ?? 100);
    }
    await producer.disconnect().catch(() => undefined);
  }

  /** Stops writing (after the round in flight). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** Every partition of every topic: leader, replicas, in-sync replicas. */
  async describe(): Promise<{ name: string; leader: number; replicas: number[]; isr: number[] }[]> {
    return this.withAdmin(async (admin) => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [] });
      return topics.flatMap((t) =>
        t.partitions.map((p) => ({
          name: `${t.name}-${p.partitionId}`,
          leader: p.leader,
          replicas: p.replicas,
          isr: p.isr,
        })),
      );
    });
  }

  /** Reads everything back: znodes under the path, the topic from the beginning. */
  async verify(readTimeoutMs = 90_000): Promise<TrafficReport> {
    // What was acknowledged before the reads start: writes go on meanwhile.
    const zkAcked = [...this.zkAcked];
    const kafkaAcked = [...this.kafkaAcked];
    // A server's reads may trail the leader by a moment (ZooKeeper reads are not linearizable):
    // asked again for a while before a write counts as lost.
    let znodes = new Set<string>();
    for (let tries = 0; tries < 20; tries++) {
      znodes = new Set(
        await zkSession(this.zkHosts(), 30_000, (zk) =>
          zkCall<string[]>((cb) => zk.getChildren(this.o.zkPath, cb)),
        ),
      );
      if (zkAcked.every((w) => znodes.has(w))) break;
      await sleep(500);
    }
    const wanted = new Set(kafkaAcked);
    const seen = new Set<string>();
    const consumer = kafkaClient(this.nodes, this.kafkaPort, 'traffic-verify').consumer({
      groupId: `verify-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: this.o.topic, fromBeginning: true });
      await consumer.run({
        eachMessage: ({ message }) => {
          seen.add(message.value?.toString() ?? '');
          return Promise.resolve();
        },
      });
      const deadline = Date.now() + readTimeoutMs;
      while ([...wanted].some((v) => !seen.has(v)) && Date.now() < deadline) await sleep(250);
    } finally {
      await consumer.disconnect().catch(() => undefined);
    }
    const partitions = await this.describe();
    return {
      zkAcknowledged: zkAcked.length,
      kafkaAcknowledged: kafkaAcked.length,
      zkLost: zkAcked.filter((w) => !znodes.has(w)),
      kafkaLost: kafkaAcked.filter((v) => !seen.has(v)),
      notInSync: partitions
        .filter((p) => p.leader < 0 || p.isr.length < p.replicas.length)
        .map(
          (p) =>
            `${p.name} (leader ${p.leader}, replicas [${p.replicas.join(',')}], isr [${p.isr.join(',')}])`,
        ),
    };
  }
}
