import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { startRunbook } from '../../src/client/index.js';
import type { PingClusterResult } from '../../src/contracts/ping.js';
import { repoRoot } from '../../src/process.js';
import { freePort, startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import { startTestCluster, type TestCluster } from '../helpers/agents.js';
import { startTestOrchestrator, type TestOrchestrator } from '../helpers/temporal.js';

/**
 * The Temporal Web UI, in a real browser (Debian's Chromium, headless, driven by
 * playwright-core): a runbook started from the UI's "Start a Workflow" form with the JSON input
 * the README documents runs; while it runs, the page shows its step table (the runbook's current
 * details) and the `progress` query answers from the Queries tab; once done, the page shows it
 * completed with its result. Its own dev server with the UI on 127.0.0.1 (the UI server calls the
 * frontend there), agents on 127.0.0.87–.88. Screenshots go to test-artifacts/.
 */
const chromiumPath = process.env.CG_CHROMIUM ?? '/usr/bin/chromium';
const nodes = ['127.0.0.87', '127.0.0.88'];
const artifacts = path.join(repoRoot, 'test-artifacts');
const workflowId = 'cg/webui/ping/from-the-form';

describe('the Web UI starts a runbook and shows its steps, query and result', () => {
  let server: DevServer;
  let orchestrator: TestOrchestrator;
  let cluster: TestCluster;
  let browser: Browser;

  before(async () => {
    if (!existsSync(chromiumPath)) return;
    server = await startDevServer({
      binary: process.env.CG_TEMPORAL_BIN ?? path.join(repoRoot, '.tools', 'bin', 'temporal'),
      port: await freePort(),
      uiPort: await freePort(),
    });
    [orchestrator, cluster, browser] = await Promise.all([
      startTestOrchestrator({ server: { address: server.address, namespace: 'default' } }),
      startTestCluster(nodes, { env: () => ({ CG_TEMPORAL__ADDRESS: server.address }) }),
      chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] }),
    ]);
    await mkdir(artifacts, { recursive: true });
  });
  let orchestratorClosed = false;
  after(async () => {
    await browser?.close();
    await cluster?.close();
    if (!orchestratorClosed) await orchestrator?.close();
    await server?.stop();
  });

  test('pingCluster from the "Start a Workflow" form', async () => {
    // Never skipped: `npm test` runs setup with --browser, which installs Chromium.
    assert.ok(
      existsSync(chromiumPath),
      `no Chromium at ${chromiumPath}: node scripts/setup.mjs --browser, apt-get install chromium, or set CG_CHROMIUM`,
    );
    const ui = server.uiUrl;
    assert.ok(ui, 'the dev server serves its UI');
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    try {
      await page.goto(`${ui}/namespaces/default/workflows/start-workflow`);
      await page.locator('#workflowId').fill(workflowId);
      await page.locator('#taskQueue').fill(orchestrator.taskQueue);
      await page.locator('#workflowType').fill('pingCluster');
      // The form checks the task queue once it is left: our orchestrator polls it.
      await page.getByText('Task Queue is Active').waitFor({ timeout: 30_000 });
      await page.locator('[contenteditable="true"]').first().click();
      await page.keyboard.type(JSON.stringify({ clusterId: 'webui', nodes, holdSeconds: 12 }));
      // Leave the editor so the form takes the input, then start.
      await page.getByText('Workflow Type').first().click();
      await page.getByRole('button', { name: 'Start Workflow' }).click();

      // Temporal has it, with the form's input.
      const handle = orchestrator.client.workflow.getHandle(workflowId);
      let described;
      for (let i = 0; i < 50 && !described; i++) {
        described = await handle.describe().catch(() => undefined);
        if (!described) await page.waitForTimeout(200);
      }
      assert.ok(described, 'the form started the workflow');
      assert.equal(described.type, 'pingCluster');

      // While it runs: the step table in the current details, and the progress query. The UI
      // renders the details' Markdown in a frame of its own (/render), from what the runbook had
      // set when the tab opened: open it again until the runbook's table is there.
      let details = '';
      for (let i = 0; i < 10 && !/pingCluster on cluster webui/.test(details); i++) {
        await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
        await page.getByText('User Metadata').first().click();
        await page.getByText('Current Details').first().waitFor({ timeout: 30_000 });
        for (let j = 0; j < 10 && !/pingCluster on cluster webui/.test(details); j++) {
          await page.waitForTimeout(300);
          const frame = page.frames().find((f) => f.url().includes('/render'));
          details =
            (await frame
              ?.locator('body')
              .innerText()
              .catch(() => '')) ?? '';
        }
      }
      await page.screenshot({ path: path.join(artifacts, 'web-ui-running.png'), fullPage: true });
      assert.match(details, /pingCluster on cluster webui — running, [0-2]\/2 steps done/);
      assert.match(details, /step\s+node\s+status\s+attempts/);
      for (const n of nodes) assert.ok(details.includes(n), `${n} in the step table`);

      await page.getByText('Queries').first().click();
      await page.getByRole('button', { name: 'Run Query' }).click();
      await page.getByText('"steps"').first().waitFor({ timeout: 30_000 });
      const queried = await page.locator('main').innerText();
      assert.match(queried, /"runbook": "pingCluster"/);
      assert.ok(queried.includes(`"node": "${nodes[1]}"`), 'the query answers with every node');

      // Done: the page shows it completed, with the result.
      const result = (await handle.result()) as PingClusterResult;
      assert.deepEqual(
        result.nodes.map((n) => n.address),
        nodes,
      );
      await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
      await page.getByText('Completed').first().waitFor({ timeout: 30_000 });
      const done = await page.locator('main').innerText();
      assert.ok(done.includes(result.nodes[0]?.root ?? '-'), 'the result is on the page');
      await page.screenshot({ path: path.join(artifacts, 'web-ui-completed.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });

  test('summary, node × phase matrix while it runs, and the last progress with no worker', async () => {
    assert.ok(existsSync(chromiumPath), `no Chromium at ${chromiumPath}`);
    const ui = server.uiUrl ?? '';
    const id = 'cg/webui/ping/matrix';
    const handle = await startRunbook(
      orchestrator.client,
      'pingCluster',
      { clusterId: 'webui', nodes, holdSeconds: 8 },
      { taskQueue: orchestrator.taskQueue, workflowId: id },
    );
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const runPage = `${ui}/namespaces/default/workflows/${encodeURIComponent(id)}`;
    /** The text of the rendered Markdown frames under "User Metadata", joined. */
    const metadata = async (want: RegExp): Promise<string> => {
      let text = '';
      for (let i = 0; i < 10 && !want.test(text); i++) {
        await page.goto(runPage);
        await page.getByText('User Metadata').first().click();
        await page.getByText('Current Details').first().waitFor({ timeout: 30_000 });
        for (let j = 0; j < 10 && !want.test(text); j++) {
          await page.waitForTimeout(300);
          const frames = page.frames().filter((f) => f.url().includes('/render'));
          const texts = await Promise.all(
            frames.map((f) =>
              f
                .locator('body')
                .innerText()
                .catch(() => ''),
            ),
          );
          text = texts.join('\n');
        }
      }
      return text;
    };
    try {
      // While it runs: the summary given at the start, and the matrix in the current details.
      const running = await metadata(/node\s+ping/);
      await page.screenshot({ path: path.join(artifacts, 'web-ui-matrix.png'), fullPage: true });
      assert.ok(running.includes(`pingCluster of cluster webui on ${nodes.join(', ')}`), running);
      assert.match(running, /node\s+ping\s*\n/);
      assert.match(running, /done\s+[0-2]\/2/);
      assert.ok(running.includes(nodes[0] ?? '-'), running);

      // Done, and no worker left: the memo still shows the last progress.
      await handle.result();
      await orchestrator.close();
      orchestratorClosed = true;
      await page.goto(runPage);
      await page.getByText('Memo').first().click();
      await page.getByText('2/2 steps done').first().waitFor({ timeout: 30_000 });
      const memo = await page.locator('main').innerText();
      assert.match(memo, /"status": "completed, 2\/2 steps done"/);
      assert.match(memo, /"ping 2\/2"/);
      await page.screenshot({ path: path.join(artifacts, 'web-ui-memo.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });
});
