import { execa } from 'execa';

/** The bench's node activities: nothing, and the smallest real process. */
export function createBenchActivities() {
  return {
    noop(): Promise<void> {
      return Promise.resolve();
    },
    async execTrue(): Promise<void> {
      await execa('true');
    },
  };
}

export type BenchActivities = ReturnType<typeof createBenchActivities>;
