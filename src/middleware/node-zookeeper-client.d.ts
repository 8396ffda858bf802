/**
 * The part of node-zookeeper-client@1.1.3 (plain JavaScript, no types of its own) that the
 * ZooKeeper adapter uses. Argument shapes follow its README; only what is called is declared.
 */
declare module 'node-zookeeper-client' {
  namespace zookeeper {
    interface Stat {
      /** A 64-bit session id as 8 bytes: all zero unless the znode is ephemeral. */
      ephemeralOwner: Buffer;
      /** The zxid that created the znode, 8 bytes big-endian: the ensemble's order of creation. */
      czxid: Buffer;
      version: number;
      dataLength: number;
      numChildren: number;
    }

    /** Errors passed to callbacks; `code` is one of `Exception`'s constants. */
    interface ZooKeeperException extends Error {
      code: number;
      getCode(): number;
      getName(): string;
    }

    type Callback<T> = (error: ZooKeeperException | Error | null, result: T) => void;

    interface Client {
      connect(): void;
      close(): void;
      /** The session id the server assigned, 8 bytes. */
      getSessionId(): Buffer;
      once(event: 'connected' | 'disconnected' | 'expired', listener: () => void): this;
      getChildren(
        path: string,
        callback: (
          error: ZooKeeperException | Error | null,
          children: string[],
          stat: Stat,
        ) => void,
      ): void;
      getData(
        path: string,
        callback: (
          error: ZooKeeperException | Error | null,
          data: Buffer | undefined,
          stat: Stat,
        ) => void,
      ): void;
      create(path: string, data: Buffer, mode: number, callback: Callback<string>): void;
      setData(path: string, data: Buffer, version: number, callback: Callback<Stat>): void;
      remove(
        path: string,
        version: number,
        callback: (error: ZooKeeperException | Error | null) => void,
      ): void;
    }

    interface ClientOptions {
      sessionTimeout?: number;
      spinDelay?: number;
      retries?: number;
    }
  }

  const zookeeper: {
    createClient(connectionString: string, options?: zookeeper.ClientOptions): zookeeper.Client;
    CreateMode: { PERSISTENT: number; EPHEMERAL: number };
    Exception: {
      NO_NODE: number;
      NODE_EXISTS: number;
      NOT_EMPTY: number;
      CONNECTION_LOSS: number;
    };
  };
  export = zookeeper;
}
