import { setTimeout as sleep } from 'node:timers/promises';
import type { InSyncReport } from './types.js';

/**
 * Asks `check` until it reports in sync or `timeoutMs` passed, and returns the last report; a
 * check that throws (a member not answering) counts as not in sync, with its message.
 */
export async function waitInSync(
  check: () => Promise<InSyncReport>,
  o: { timeoutMs: number; signal?: AbortSignal; onProgress?: (detail: string) => void },
): Promise<InSyncReport> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    const report = await check().catch((err: unknown): InSyncReport => ({
      inSync: false,
      detail: (err as Error).message,
    }));
    if (report.inSync || Date.now() > deadline) return report;
    o.onProgress?.(report.detail);
    await sleep(1000, undefined, { signal: o.signal });
  }
}
