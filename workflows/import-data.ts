import { ApplicationFailure } from '@temporalio/workflow';
import {
  dataComponents,
  isReplicated,
  type DataComponentName,
  type ImportDataInput,
  type ImportDataResult,
} from '../src/contracts/data-runbooks.js';
import { checkArchiveStep, dataCalls, loadSteps, planLoad } from './lib/data.js';
import { openDataRunbook } from './lib/open.js';
import { runQuiesced } from './lib/quiesce.js';

/**
 * Imports an export (docs/design.md, importData) into the running cluster, through the member whose
 * `import-data-archive/` holds it: the archive is verified against its manifest first (a bad
 * one changes nothing), the data the import will change is backed up as
 * `<timestamp>-before-import` unless the operator says not to, then each component is loaded —
 * ZooKeeper znodes created or overwritten, Kafka messages appended to their topics, the
 * controller's folders replaced (the old ones kept aside by the controller adapter) — and the
 * middleware is checked healthy on every member.
 */
export async function importData(rawInput: ImportDataInput): Promise<ImportDataResult> {
  const { input, ctx, rb, clusterId, master, members, manifestFor, summary } =
    await openDataRunbook('importData', rawInput);
  const { archive } = input;
  rb.eventNodes = members;
  const node = input.node ?? master;
  const refuse = (why: string, type: 'InvalidInput' | 'UnsafeArchive' = 'InvalidInput') => {
    rb.tracker.finish('failed');
    return ApplicationFailure.nonRetryable(
      `importData of ${archive} into cluster ${clusterId} refused; nothing was changed: ${why}`,
      type,
    );
  };
  if (!members.includes(node)) {
    throw refuse(`${node} is not a member of the cluster ([${members.join(', ')}])`);
  }

  // --- validation: read-only ---
  const check = await checkArchiveStep(ctx, node, 'import', archive);
  if (!check.present) {
    throw refuse(
      `${node} has no import-data-archive/${archive}.zip. Upload it first ` +
        `(POST /v1/cluster/data/actions/import on ${node}'s agent) or copy it into that folder`,
    );
  }
  if (check.problem || !check.archive)
    throw refuse(check.problem ?? 'not verified', 'UnsafeArchive');
  const manifest = check.archive.manifest;
  if (input.middleware?.includes('bundles')) {
    throw refuse(
      'the bundle set is not imported: it comes back with restoreCluster of a backup of this ' +
        'cluster; roll the bundles out here instead, and import without bundles',
    );
  }
  // A backup's archive put here for an import may hold a bundle set: not this runbook's.
  const wanted = input.middleware ?? dataComponents.filter((c) => c !== 'bundles');
  const components: DataComponentName[] = manifest.components.filter((c) => wanted.includes(c));
  const absent = (input.middleware ?? []).filter((c) => !manifest.components.includes(c));
  if (absent.length || components.length === 0) {
    throw refuse(
      `${archive} holds no ${(absent.length ? absent : wanted).join(', ')} data (it holds ${manifest.components.join(', ')})`,
    );
  }
  const sources = await rb.step(
    `sources:${node}`,
    { title: 'what this node can import into', node },
    () => dataCalls(ctx, node, 'dataSources').dataSources(),
  );
  const missing = components.filter((c) =>
    isReplicated(c) ? !sources?.enabled.includes(c) : !sources?.controller,
  );
  if (missing.length) {
    throw refuse(
      `${node} runs no ${missing.join(', ')} (its agent enables ${sources?.enabled.join(', ') || 'nothing'}` +
        `${sources?.controller ? ' and the controller' : ''}); import with middleware: [${components.filter((c) => !missing.includes(c)).join(', ')}]`,
    );
  }

  const { load, steps } = planLoad(
    {
      op: 'import',
      archiveId: archive,
      from: 'import',
      plan: [{ node, components }],
      sha256: { [node]: check.archive.sha256 },
      members,
    },
    input.keepCurrentData,
    manifestFor,
  );
  const keptAs = load.aside?.backupId;
  const imported: ImportDataResult['imported'] = [];
  const result = (): ImportDataResult => ({
    runbook: 'importData',
    clusterId,
    archive,
    sourceClusterId: manifest.clusterId,
    ...summary,
    node,
    components,
    steps,
    ...(keptAs ? { keptAs } : {}),
    imported,
  });
  if (input.dryRun) return result();
  rb.tracker.addSteps(steps);

  // The application's webapps are stopped around the change (docs/design.md "Admission").
  await runQuiesced(
    ctx,
    members,
    {
      started: { archive, node, components, from: manifest.clusterId },
      completed: () => ({ archive, node, components, keptAs }),
      failed: { archive },
    },
    async () => {
      await loadSteps(ctx, load, imported);
    },
  );
  return result();
}
