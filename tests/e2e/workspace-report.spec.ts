import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { expectReportRendered, openReportOffline } from './report-helpers.ts';
import { startServeWithHistory, type ServeHandle } from './serve-helpers.ts';

// An experiment's page against the real `whittle serve`: its lineage tree (original → prune → quantize,
// the current node marked, the others linked), and its HTML report downloaded and opened with the
// network blocked — it renders, charts included.
let serve: ServeHandle;
const ids: Record<string, number> = {};

test.beforeAll(async () => {
  serve = await startServeWithHistory((h, home) => {
    const original = 'a'.repeat(64);
    const pruned = 'b'.repeat(64);
    ids.eval = h.createExperiment({ name: 'Evaluate stories260K', kind: 'evaluate', recipe: { model: { path: '/m/stories260K.onnx' } }, modelPath: '/m/stories260K.onnx', modelSha256: original, status: 'running' });
    h.addMetrics(ids.eval, [{ name: 'perplexity', value: 4.2, unit: '', subject: 'model' }, { name: 'bytes_on_disk', value: 1_100_000, unit: 'bytes', subject: 'model' }]);
    h.finish(ids.eval, 'done');
    ids.prune = h.createExperiment({ name: 'Magnitude 30 % · stories260K', kind: 'prune', recipe: { model: { path: '/m/stories260K.onnx' }, steps: [{ type: 'prune', method: 'magnitude', sparsity: 0.3 }] }, modelPath: '/m/stories260K.onnx', modelSha256: original, parentId: ids.eval, status: 'running' });
    h.addMetrics(ids.prune, [
      { name: 'perplexity', value: 4.2, unit: '', subject: 'original' }, { name: 'perplexity', value: 4.7, unit: '', subject: 'result' },
      { name: 'bytes_on_disk', value: 1_100_000, unit: 'bytes', subject: 'original' }, { name: 'bytes_on_disk', value: 1_100_000, unit: 'bytes', subject: 'result' },
    ]);
    h.finish(ids.prune, 'done');
    h.recordOutput(ids.prune, pruned);
    ids.quant = h.createExperiment({ name: 'RTN 4-bit g32 · pruned', kind: 'quantize', recipe: { model: { path: '/o/model.onnx' }, steps: [{ type: 'quantize', method: 'rtn', bits: 4 }] }, modelPath: '/o/model.onnx', modelSha256: pruned, status: 'running' });
    h.linkInput(ids.quant, pruned);
    h.addMetrics(ids.quant, [
      { name: 'perplexity', value: 4.7, unit: '', subject: 'original' }, { name: 'perplexity', value: 5.1, unit: '', subject: 'result' },
      { name: 'bytes_on_disk', value: 1_100_000, unit: 'bytes', subject: 'original' }, { name: 'bytes_on_disk', value: 260_000, unit: 'bytes', subject: 'result' },
    ]);
    h.finish(ids.quant, 'done');
    // Its output folder, inside the served home (a workspace root).
    const folder = path.join(home, 'experiments', `${ids.quant}-rtn-4-bit`);
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, 'model.onnx'), Buffer.alloc(5000, 3));
    writeFileSync(path.join(folder, 'whittle.json'), '{"whittle":"0.1.0"}');
    h.addArtefacts(ids.quant, [{ kind: 'folder', path: folder, bytes: 5019 }]);
  });
});
test.afterAll(async () => { await serve?.stop(); });

test('the lineage tree shows original → prune → quantize; the HTML report opens offline with its charts', async ({ page, context }, testInfo) => {
  await page.goto(serve.url);
  await expect.poll(() => page.url()).not.toContain('token=');
  await page.goto(`${serve.origin}/#/history/${ids.quant}`);

  const tree = page.getByTestId('lineage-tree');
  await expect(tree).toBeVisible();
  await expect(tree.locator('[data-kind]')).toHaveCount(3);
  expect(await tree.locator('[data-kind]').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')))).toEqual(['model', 'prune', 'quantize']);
  await expect(page.getByTestId('lineage-current')).toContainText('RTN 4-bit g32 · pruned');
  await page.screenshot({ path: testInfo.outputPath('detail.png'), fullPage: true });
  // Another node leads to its experiment.
  await tree.getByRole('link', { name: /Magnitude 30 %/ }).click();
  await expect(page).toHaveURL(new RegExp(`#/history/${ids.prune}$`));
  await expect(page.getByTestId('lineage-current')).toContainText('Magnitude 30 %');
  await page.goto(`${serve.origin}/#/history/${ids.quant}`);

  await page.getByTestId('report-button').click();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('report-html').click()]);
  expect(download.suggestedFilename()).toBe(`whittle-${ids.quant}.html`);
  const file = testInfo.outputPath(download.suggestedFilename());
  await download.saveAs(file);
  const html = readFileSync(file, 'utf8');
  expect(html).not.toMatch(/(src|href)\s*=\s*["']?https?:/i);

  const report = await openReportOffline(context, file);
  await expectReportRendered(report, /RTN 4-bit g32 · pruned/);
  await expect(report.page.locator('svg.chart[aria-label="perplexity"] rect.bar')).toHaveCount(2);
  await expect(report.page.locator('ul.tree .current')).toHaveText(new RegExp(`#${ids.quant} quantize`));
  await report.page.screenshot({ path: testInfo.outputPath(`${path.basename(file)}.png`), fullPage: true });
});

test('a comparison report from the compare page opens offline with a bar per run', async ({ page, context }, testInfo) => {
  await page.goto(serve.url);
  await expect.poll(() => page.url()).not.toContain('token=');
  const compared = [ids.eval, ids.prune, ids.quant];
  await page.goto(`${serve.origin}/#/compare?ids=${compared.join(',')}`);
  await page.getByTestId('report-button').click();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('report-html').click()]);
  expect(download.suggestedFilename()).toBe(`whittle-${compared.join('-')}.html`);
  const file = testInfo.outputPath(download.suggestedFilename());
  await download.saveAs(file);
  const report = await openReportOffline(context, file);
  await expectReportRendered(report, `Comparison of experiments ${compared.join(', ')}`);
  await expect(report.page.locator('svg.chart[aria-label="perplexity"] rect.bar')).toHaveCount(3);
  await expect(report.page.locator('svg.chart[aria-label="perplexity"] rect.bar.base')).toHaveCount(1);
  await report.page.screenshot({ path: testInfo.outputPath('comparison.png'), fullPage: true });
});

test('in serve mode an output folder downloads from the experiment page as a zip', async ({ page }, testInfo) => {
  await page.goto(serve.url);
  await expect.poll(() => page.url()).not.toContain('token=');
  await page.goto(`${serve.origin}/#/history/${ids.quant}`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('detail-download-folder').click()]);
  expect(download.suggestedFilename()).toBe(`${ids.quant}-rtn-4-bit.zip`);
  const zip = testInfo.outputPath(download.suggestedFilename());
  await download.saveAs(zip);
  const listing = execFileSync('unzip', ['-t', zip], { encoding: 'utf8' });
  expect(listing).toMatch(/testing: \d+-rtn-4-bit\/model\.onnx\s+OK/);
  expect(listing).toMatch(/testing: \d+-rtn-4-bit\/whittle\.json\s+OK/);
  expect(listing).toMatch(/No errors detected/);
});
