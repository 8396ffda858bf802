import { createRequire } from 'node:module';
import zookeeper from 'node-zookeeper-client';

/**
 * node-zookeeper-client@1.1.3, hardened against a byte stream it cannot parse. Import the client
 * from here, never from the package: importing this module patches it once for the process.
 *
 * The client keeps a partial frame in `pendingBuffer` across a lost connection, so the first
 * bytes of the next connection are parsed behind stale ones, and it throws "Unknown code: …"
 * (or "offset … is out of buffer range") from its socket's `data` listener, where no caller can
 * catch it: the process dies (upstream issues #23, #39 and #70, open since 2014). A ZooKeeper
 * killed mid-reply is enough, which is what a node's crash or a chaos campaign does. Here a
 * closed socket drops the partial frame, and a frame that still does not parse closes the
 * connection: the client's own reconnect runs and the requests in flight fail with
 * CONNECTION_LOSS, which every caller already handles as a retryable error.
 */
interface Packet {
  callback?: (...args: unknown[]) => unknown;
}

interface ConnectionManagerInternals {
  pendingBuffer: Buffer | null;
  pendingQueue: Packet[];
  socket?: { destroy(error?: Error): void };
  onSocketData: (this: ConnectionManagerInternals, buffer: Buffer) => void;
  onSocketClosed: (this: ConnectionManagerInternals, hadError: boolean) => void;
}

const marker = Symbol.for('clusterguard.zookeeper-client.hardened');

function harden(): void {
  const require = createRequire(import.meta.url);
  const manager = require('node-zookeeper-client/lib/ConnectionManager.js') as {
    prototype: ConnectionManagerInternals & { [marker]?: true };
  };
  const proto = manager.prototype;
  if (proto[marker]) return;
  proto[marker] = true;
  const onSocketData = proto.onSocketData;
  const onSocketClosed = proto.onSocketClosed;
  proto.onSocketClosed = function (this: ConnectionManagerInternals, hadError: boolean) {
    this.pendingBuffer = null;
    onSocketClosed.call(this, hadError);
  };
  proto.onSocketData = function (this: ConnectionManagerInternals, buffer: Buffer) {
    // The request a reply answers is taken off the queue before the reply is parsed: if parsing
    // throws, it goes back, so that the reconnect fails it with CONNECTION_LOSS instead of
    // leaving its caller waiting for ever.
    const head = this.pendingQueue[0];
    let answered = false;
    const callback = head?.callback;
    if (head && callback)
      head.callback = (...args: unknown[]) => {
        answered = true;
        return callback(...args);
      };
    try {
      onSocketData.call(this, buffer);
    } catch (err) {
      // The caller's own callback threw: not a protocol fault, and not ours to hide.
      if (answered) throw err;
      if (head && this.pendingQueue[0] !== head) this.pendingQueue.unshift(head);
      this.pendingBuffer = null;
      this.socket?.destroy(
        new Error(`ZooKeeper sent a reply this client cannot parse: ${(err as Error).message}`),
      );
    } finally {
      if (head && callback) head.callback = callback;
    }
  };
}

harden();

export { zookeeper };
export type ZooKeeperClient = zookeeper.Client;
