import { createArchiveCopyActivities, type PeerAccess } from './archive-copy-activities.js';
import { createArchiveReadActivities } from './archive-read-activities.js';
import { createArchiveRetentionActivities } from './archive-retention-activities.js';
import { createArchiveWriteActivities } from './archive-write-activities.js';
import { createArchiveContext, type DataActivityDeps } from './data-archives.js';

export type { CopyArchiveInput, CopiedArchive, PeerAccess } from './archive-copy-activities.js';
export type {
  ArchiveDataInput,
  ArchiveOp,
  DataActivityDeps,
  ListedArchive,
  PruneArchivesInput,
  PruneArchivesResult,
  UnpackArchiveInput,
  UnpackedArchive,
  VerifiedArchive,
  VerifyArchiveInput,
} from './data-archives.js';

/** Creates the data activities of one node agent: archives of its data operations. */
export function createDataActivities(deps: DataActivityDeps & { peer?: PeerAccess }) {
  const archives = createArchiveContext(deps);
  return {
    ...createArchiveCopyActivities(archives, deps.peer),
    ...createArchiveWriteActivities(archives),
    ...createArchiveReadActivities(archives),
    ...createArchiveRetentionActivities(archives),
  };
}

export type DataActivities = ReturnType<typeof createDataActivities>;
