import { ClusterGuardError } from '../contracts/errors.js';

/**
 * What `read` returns; what it throws becomes an `InvalidConfig` error whose message
 * `say(reason)` words, so that a config file that cannot be read or parsed is named with the fix.
 */
export function readConfig<T>(read: () => T, say: (reason: string) => string): T {
  try {
    return read();
  } catch (err) {
    throw new ClusterGuardError('InvalidConfig', say((err as Error).message));
  }
}
