import { ApplicationFailure } from '@temporalio/workflow';
import {
  dataComponents,
  isReplicated,
  type DataComponentName,
  type ImportDataInput,
  type ImportDataResult,
} from '../src/contracts/data-runbooks.js';
import {
  checkArchiveStep,
  dataCalls,
  keepAsidePlan,
  loadPlannedSteps,
  loadSteps,
  manifestOf,
  readMembers,
  type LoadRun,
} from './lib/data.js';
import { tagRunbook } from './lib/membership.js';
import { openRunbook } from './lib/open.js';
import { Webapps } from './lib/quiesce.js';

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
  const { input, ...ctx } = await openRunbook('importData', rawInput);
  const { clusterId, archive } = input;
  const { rb } = ctx;
  const startedAt = new Date();
  const { master, members, file } = await readMembers(ctx, input.master);
  tagRunbook('importData', clusterId, members);
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
  const wanted = input.middleware ?? dataComponents;
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

  const plan = [{ node, components }];
  const keep = input.keepCurrentData ? keepAsidePlan('import', plan) : undefined;
  const aside = keep && {
    ...keep,
    manifest: manifestOf(clusterId, members, plan, startedAt, file.cluster.clusterUuid),
  };
  const load: LoadRun = {
    op: 'import',
    archiveId: archive,
    from: 'import',
    plan,
    sha256: { [node]: check.archive.sha256 },
    members,
    ...(aside ? { aside } : {}),
  };
  const steps = loadPlannedSteps(load);
  const imported: ImportDataResult['imported'] = [];
  const result = (): ImportDataResult => ({
    runbook: 'importData',
    clusterId,
    archive,
    sourceClusterId: manifest.clusterId,
    dryRun: input.dryRun,
    master,
    members,
    node,
    components,
    steps,
    ...(aside ? { keptAs: aside.backupId } : {}),
    imported,
  });
  if (input.dryRun) return result();
  rb.tracker.addSteps(steps);

  const webapps = new Webapps(ctx, members);
  await rb.emit('runbook.started', { archive, node, components, from: manifest.clusterId });
  try {
    await webapps.stop();
    await loadSteps(ctx, load, imported);
    rb.tracker.finish('completed');
    await rb.emit('runbook.completed', { archive, node, components, keptAs: aside?.backupId });
    return result();
  } catch (err) {
    rb.tracker.finish('failed');
    await rb.emit('runbook.failed', { archive, error: (err as Error).message, state: rb.state });
    throw err;
  } finally {
    await webapps.start();
  }
}
