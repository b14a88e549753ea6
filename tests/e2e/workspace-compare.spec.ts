import { expect, test } from '@playwright/test';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expectReportRendered, openReportOffline } from './report-helpers.ts';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// The experiment workspace in Chromium against the real `whittle serve`: two quantizations (RTN 4-bit and
// 8-bit) and a prune of the bundled sample, run by the CLI on the same history; the three compared
// (ticked in the history list) and their HTML report opened offline, then the Pareto view of the sample and
// the best run under a size budget.
let serve: ServeHandle;
test.beforeAll(async () => { serve = await startServe(); });
test.afterAll(async () => { await serve?.stop(); });

const shots = path.join(projectRoot, 'test-results', 'screenshots');
const sample = path.join(projectRoot, 'main', 'resources', 'sample');
const run = promisify(execFile);

/** One job through the CLI on the served history; answers its experiment id. */
async function job(args: string[]): Promise<number> {
  const { stdout } = await run(process.execPath, [
    path.join(projectRoot, 'out', 'cli.cjs'), ...args, path.join(sample, 'stories260K-kv.onnx'),
    '--eval-text', path.join(sample, 'tinystories-eval.txt'), '--samples', '20', '--home', serve.home, '--json', '-q',
  ], { timeout: 120_000 });
  return (JSON.parse(stdout) as { experimentId: number }).experimentId;
}

test('compare two quantizations and a prune of the sample, then pick the best under a size budget on the Pareto view', async ({ page, context }, testInfo) => {
  const rtn4 = await job(['quantize', '--bits', '4', '--name', 'e2e RTN 4-bit']);
  const rtn8 = await job(['quantize', '--bits', '8', '--name', 'e2e RTN 8-bit']);
  const pruned = await job(['prune', '--sparsity', '0.5', '--name', 'e2e magnitude 50']);

  // 1. The history list: tick the three, "Compare selected".
  await page.goto(serve.url);
  await page.evaluate("location.hash = '#/history'");
  await expect(page.getByTestId('history-row')).toHaveCount(3);
  for (const id of [rtn4, rtn8, pruned]) await page.locator(`[data-testid="history-row"][data-id="${id}"] [data-testid="history-select"]`).check();
  await expect(page.getByTestId('history-selected-count')).toHaveText('3');
  await page.getByTestId('history-compare-selected').click();

  // 2. The comparison: three runs, measured alike, the oldest the baseline.
  const compare = page.getByTestId('compare-page');
  await expect(compare).toBeVisible();
  await expect(compare).toHaveAttribute('data-ids', `${rtn4},${rtn8},${pruned}`);
  await expect(compare).toHaveAttribute('data-baseline', String(rtn4));
  await expect(page.getByTestId('compare-run-method')).toHaveText(['RTN 4-bit g32', 'RTN 8-bit g32', 'Magnitude 50%']);
  await expect(page.getByTestId('compare-like-for-like')).toBeVisible();
  // Timings from separate jobs are flagged, not judged as mismatches.
  await expect(page.locator('[data-testid="compare-note"][data-severity="warning"]')).toHaveCount(0);
  await expect(page.locator('[data-testid="compare-note"][data-aspect="speed"][data-severity="info"]')).toBeVisible();
  const ppl = page.locator('[data-testid="compare-metric-row"][data-metric="perplexity"]');
  await expect(ppl).toBeVisible();
  // Against 4-bit: 8-bit has the lower perplexity (green), the 50 % prune the higher (red); sizes the other way round for 8-bit.
  await expect(ppl.locator(`[data-id="${rtn8}"] [data-testid="compare-delta"]`)).toHaveAttribute('data-verdict', 'better');
  await expect(ppl.locator(`[data-id="${pruned}"] [data-testid="compare-delta"]`)).toHaveAttribute('data-verdict', 'worse');
  const size = page.locator('[data-testid="compare-metric-row"][data-metric="bytes_on_disk"]');
  await expect(size.locator(`[data-id="${rtn8}"] [data-testid="compare-delta"]`)).toHaveAttribute('data-verdict', 'worse');
  // Recipes diffed, generations side by side, per-weight charts overlaid.
  await expect(page.locator('[data-testid="compare-recipe-row"][data-path="steps[0].bits"]')).toContainText('8');
  await expect(page.locator('[data-testid="compare-recipe-row"][data-path="steps[0].method"]')).toContainText('magnitude');
  await expect(page.getByTestId('compare-generation-row')).toHaveCount(3);
  await expect(page.locator('[data-testid="compare-series"][data-kind="quantization-error"]')).toHaveAttribute('data-runs', '2');
  await expect(page.locator('[data-testid="compare-series"][data-kind="sparsity"]')).toHaveAttribute('data-runs', '1');
  await expect(page.locator('[data-testid="compare-series"][data-kind="quantization-error"] .recharts-bar-rectangle').first()).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'workspace-compare.png'), fullPage: true });

  // The 8-bit run as the baseline: the 4-bit run's perplexity is now the worse one.
  await page.locator(`[data-testid="compare-baseline"][data-id="${rtn8}"]`).click();
  await expect(compare).toHaveAttribute('data-baseline', String(rtn8));
  await expect(ppl.locator(`[data-id="${rtn4}"] [data-testid="compare-delta"]`)).toHaveAttribute('data-verdict', 'worse');

  // The comparison's HTML report, opened with the network blocked: it renders, a perplexity bar per run.
  await page.getByTestId('report-button').click();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('report-html').click()]);
  const file = testInfo.outputPath(download.suggestedFilename());
  await download.saveAs(file);
  const report = await openReportOffline(context, file);
  await expectReportRendered(report, `Comparison of experiments ${[rtn4, rtn8, pruned].join(', ')}`);
  await expect(report.page.locator('svg.chart[aria-label="perplexity"] rect.bar')).toHaveCount(3);
  await report.page.close();

  // 3. The Pareto view of the sample: the original and the three runs.
  await page.getByTestId('compare-pareto').click();
  await expect(page.getByTestId('pareto-chart')).toBeVisible();
  await expect(page.getByTestId('pareto-point')).toHaveCount(4);
  await expect(page.locator('[data-testid="pareto-point"][data-original="true"]')).toHaveCount(1);
  // The 50 % prune is larger and worse than the original: never on the front; the 4-bit run, the smallest, always.
  await expect(page.locator(`[data-testid="pareto-point"][data-id="${pruned}"][data-original="false"]`)).toHaveAttribute('data-front', 'false');
  await expect(page.locator(`[data-testid="pareto-point"][data-id="${rtn4}"]`)).toHaveAttribute('data-front', 'true');
  await expect(page.getByTestId('pareto-front-line')).toBeVisible();
  // The prune's perplexity squeezes the others into a line: a log scale spreads them; the points stay.
  await page.getByTestId('pareto-log').click();
  await expect(page.getByTestId('pareto-chart')).toHaveAttribute('aria-label', /Perplexity against Size on disk/);
  await expect(page.getByTestId('pareto-point')).toHaveCount(4);

  // Best under 0.5 MiB: only the 4-bit run fits (the 8-bit one is larger); without a limit the lowest perplexity wins.
  await page.getByTestId('pareto-budget-size').fill('0.5');
  await expect(page.getByTestId('pareto-best')).toHaveAttribute('data-id', String(rtn4));
  await expect(page.locator(`[data-testid="pareto-point"][data-id="${rtn4}"]`)).toHaveAttribute('data-best', 'true');
  await page.getByTestId('pareto-budget-size').fill('0.2');
  await expect(page.getByTestId('pareto-best-none')).toBeVisible();
  await page.getByTestId('pareto-budget-size').fill('0.5');
  await expect(page.getByTestId('pareto-best')).toHaveAttribute('data-id', String(rtn4));
  await page.screenshot({ path: path.join(shots, 'workspace-pareto.png'), fullPage: true });

  // A point opens its experiment.
  await page.locator(`[data-testid="pareto-point"][data-id="${rtn4}"]`).click();
  await expect(page.getByTestId('history-detail')).toHaveAttribute('data-id', String(rtn4));

  // 4. "Compare with…" from the experiment page.
  await page.getByTestId('detail-compare-with').click();
  await page.getByTestId('compare-with-pick').click();
  await page.getByRole('option', { name: new RegExp(`^#${pruned} `) }).click();
  await page.keyboard.press('Escape');
  await page.getByTestId('compare-with-go').click();
  await expect(page.getByTestId('compare-page')).toHaveAttribute('data-ids', `${rtn4},${pruned}`);
});
