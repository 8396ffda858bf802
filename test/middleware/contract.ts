import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClusterGuardError } from '../../src/contracts/errors.js';
import type { MiddlewareAdapter } from '../../src/middleware/kit/index.js';

export interface ContractNode {
  adapter: MiddlewareAdapter;
  /** A second adapter for the same node, as an agent restarted while the server runs would build. */
  restartedAgent(): MiddlewareAdapter;
  cleanup(): Promise<void>;
}

/**
 * Ways to get a node that each adapter's test file provides. `working`: configured and ready to
 * start (a single-member cluster is fine). `crashing`: its server writes an error the adapter's
 * failFilter matches and exits during start. `neverReady`: its server runs but never passes the
 * readiness check, with a start timeout of a few seconds.
 */
export interface ContractSubject {
  name: string;
  working(): Promise<ContractNode>;
  crashing(): Promise<ContractNode>;
  neverReady(): Promise<ContractNode>;
}

const isMiddlewareFailure = (pattern: RegExp) => (err: unknown) =>
  err instanceof ClusterGuardError && err.type === 'MiddlewareFailure' && pattern.test(err.message);

/** The one contract every middleware adapter meets (docs/design.md, "Layers": start/stop/check). */
export function middlewareContract(subject: ContractSubject): void {
  describe(`${subject.name} adapter contract`, () => {
    test('start, check, stop; a second start is idempotent; a stopped server stops again quietly', async () => {
      const node = await subject.working();
      try {
        const started = await node.adapter.startServer();
        assert.equal(started.running, true);
        assert.equal(started.healthy, true, started.detail);
        assert.ok(started.pid, 'a started server has a pid');

        const again = await node.adapter.startServer();
        assert.equal(again.pid, started.pid, 'a second start must not start a second server');

        const adopted = await node.restartedAgent().checkServer();
        assert.equal(
          adopted.pid,
          started.pid,
          'a restarted agent finds the running server by its pid file',
        );
        assert.equal(adopted.healthy, true);

        await node.adapter.stopServer();
        const stopped = await node.adapter.checkServer();
        assert.equal(stopped.running, false);
        assert.equal(stopped.healthy, false);
        await node.adapter.stopServer();
      } finally {
        await node.adapter.stopServer({ force: true }).catch(() => undefined);
        await node.cleanup();
      }
    });

    test('a server that crashes during start fails the start with its log, and is not left running', async () => {
      const node = await subject.crashing();
      try {
        await assert.rejects(
          node.adapter.startServer(),
          isMiddlewareFailure(/failed to start|exited during start-up/),
        );
        assert.equal((await node.adapter.checkServer()).running, false);
      } finally {
        await node.adapter.stopServer({ force: true }).catch(() => undefined);
        await node.cleanup();
      }
    });

    test('a start that times out fails with the reason and stops the half-started server', async () => {
      const node = await subject.neverReady();
      try {
        await assert.rejects(
          node.adapter.startServer(),
          isMiddlewareFailure(/did not become ready within \d+ s/),
        );
        assert.equal((await node.adapter.checkServer()).running, false);
      } finally {
        await node.adapter.stopServer({ force: true }).catch(() => undefined);
        await node.cleanup();
      }
    });
  });
}
