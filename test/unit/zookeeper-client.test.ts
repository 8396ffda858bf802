import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { zookeeper } from '../../src/middleware/zookeeper/client.js';

/**
 * node-zookeeper-client as hardened by src/middleware/zookeeper/client.ts, against a loopback
 * server that speaks ZooKeeper's framing with the faults a killed or confused server produces
 * (a reply cut off mid-frame, a reply header that does not parse). Unpatched, the first gives a
 * garbage session and the second throws from a socket listener and kills the process.
 */

const frame = (payload: Buffer) => {
  const size = Buffer.alloc(4);
  size.writeInt32BE(payload.length);
  return Buffer.concat([size, payload]);
};

function connectResponse(sessionId: bigint): Buffer {
  const b = Buffer.alloc(36);
  b.writeInt32BE(0, 0); // protocol version
  b.writeInt32BE(10_000, 4); // negotiated session timeout
  b.writeBigInt64BE(sessionId, 8);
  b.writeInt32BE(16, 16); // password length, 16 bytes of zero follow
  return frame(b);
}

function replyHeader(xid: number, err: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32BE(xid, 0);
  b.writeBigInt64BE(1n, 4);
  b.writeInt32BE(err, 12);
  return frame(b);
}

type Handler = (socket: net.Socket, request: Buffer, index: number) => void;

/** A server that hands every whole request frame of connection N to `handlers[N]`. */
async function fakeServer(handlers: Handler[]) {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const handler = handlers[Math.min(connections, handlers.length - 1)];
    connections += 1;
    let pending = Buffer.alloc(0);
    let index = 0;
    socket.on('data', (data) => {
      pending = Buffer.concat([pending, data]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
        const request = pending.subarray(4, 4 + pending.readInt32BE(0));
        pending = pending.subarray(4 + request.length);
        handler?.(socket, request, index++);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    connections: () => connections,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const xidOf = (request: Buffer) => request.readInt32BE(0);
const pingXid = -2;

describe('the ZooKeeper client survives replies it cannot parse', () => {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const connected = async (address: string) => {
    const client = zookeeper.createClient(address, { spinDelay: 50, sessionTimeout: 10_000 });
    cleanups.push(() => client.close());
    await new Promise<void>((resolve) => {
      client.once('connected', resolve);
      client.connect();
    });
    return client;
  };

  test('a connection cut mid-reply leaves nothing behind: the next session is read whole', async () => {
    const server = await fakeServer([
      (socket) => {
        socket.write(connectResponse(0x1111n).subarray(0, 10));
        setTimeout(() => socket.destroy(), 50);
      },
      (socket, _request, index) => {
        if (index === 0) socket.write(connectResponse(0x2222n));
      },
    ]);
    cleanups.push(server.close);
    const client = await connected(server.address);
    assert.equal(server.connections(), 2);
    assert.equal(client.getSessionId().readBigInt64BE(0), 0x2222n);
  });

  test('a reply header with an unknown error code fails that request with CONNECTION_LOSS and the client reconnects', async () => {
    const unknownCode = -2114387968;
    const server = await fakeServer([
      (socket, request, index) => {
        if (index === 0) socket.write(connectResponse(0x3333n));
        else if (xidOf(request) !== pingXid) socket.write(replyHeader(xidOf(request), unknownCode));
      },
      (socket, request, index) => {
        if (index === 0) socket.write(connectResponse(0x4444n));
        else if (xidOf(request) !== pingXid)
          socket.write(replyHeader(xidOf(request), zookeeper.Exception.NO_NODE));
      },
    ]);
    cleanups.push(server.close);
    const client = await connected(server.address);
    const getData = () =>
      new Promise<number | undefined>((resolve) =>
        client.getData('/x', (error) => resolve((error as { code?: number } | null)?.code)),
      );
    assert.equal(await getData(), zookeeper.Exception.CONNECTION_LOSS);
    assert.equal(await getData(), zookeeper.Exception.NO_NODE, 'served by the next connection');
    assert.equal(server.connections(), 2);
  });
});
