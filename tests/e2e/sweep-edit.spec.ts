import { expect, test, type Page } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// Edit and re-run, and sweeps, in Chromium against the real `whittle serve`: an RTN 8-bit g128 experiment
// of the bundled sample (made by the CLI beside the server, on the same history) opens in the Quantize
// wizard with its method, bits and group size set; "Sweep…" checks a grid before anything runs, then
// runs four experiments as one group whose page lists them and links to their comparison.
let serve: ServeHandle;
let experimentId = 0;
const SAMPLE_MODEL = path.join(projectRoot, 'main', 'resources', 'sample', 'stories260K-kv.onnx');
const shots = path.join(projectRoot, 'test-results', 'screenshots');

test.beforeAll(async () => {
  serve = await startServe();
  const recipe = path.join(serve.home, 'rtn8.json');
  writeFileSync(recipe, JSON.stringify({
    model: { path: SAMPLE_MODEL },
    steps: [{ type: 'quantize', method: 'rtn', bits: 8, blockSize: 128 }],
    evaluation: { footprint: true },
  }));
  const run = spawnSync(process.execPath, [path.join(projectRoot, 'out', 'cli.cjs'), 'run', recipe, '--json', '--home', serve.home], { encoding: 'utf8', timeout: 60_000 });
  expect(run.status, run.stderr).toBe(0);
  experimentId = (JSON.parse(run.stdout) as { experimentId: number }).experimentId;
});
test.afterAll(async () => { await serve?.stop(); });

async function openDetail(page: Page): Promise<void> {
  await page.goto(serve.url);
  await page.evaluate(`location.hash = '#/history/${experimentId}'`);
  await expect(page.getByTestId('history-detail')).toHaveAttribute('data-id', String(experimentId));
}

test('edit and re-run opens the Quantize wizard with the recipe\u2019s method, bits and group size', async ({ page }) => {
  await openDetail(page);
  await expect(page.getByTestId('detail-rerun')).toBeVisible();
  await page.getByTestId('detail-edit-rerun').click();
  await expect(page.getByTestId('wizard-step-method')).toBeVisible();
  await expect(page.getByTestId('method-rtn')).toHaveAttribute('data-selected', 'true');
  await expect(page.getByTestId('bits-select').getByRole('radio', { name: '8-bit' })).toBeChecked();
  await expect(page.getByTestId('block-size')).toHaveValue('128');
  // Attached to no job: the address names the source experiment, not a job.
  expect(page.url()).toContain(`from=${experimentId}`);
  expect(page.url()).not.toContain('job=');

  // The Run step offers the same recipe as a sweep; each step opens at the top of the page.
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('wizard-step-weights')).toBeVisible();
  await page.evaluate('window.scrollTo(0, document.body.scrollHeight)');
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('wizard-step-run')).toBeVisible();
  await expect.poll(() => page.evaluate('window.scrollY')).toBe(0);
  await expect(page.getByTestId('quantize-name')).toHaveAttribute('placeholder', 'RTN 8-bit g128 · stories260K-kv');
  await page.getByTestId('quantize-sweep').click();
  await expect(page.getByTestId('sweep-grid')).toHaveValue('steps.0.bits=4,8\nsteps.0.blockSize=32,128');
  await expect(page.getByTestId('sweep-preview')).toContainText('RTN 8-bit g128 · stories260K-kv');
});

test('a sweep of 2 × 2 checks its grid, runs four experiments in one group and links to their comparison', async ({ page }) => {
  test.setTimeout(180_000);
  await openDetail(page);
  await page.getByTestId('detail-sweep').click();
  const grid = page.getByTestId('sweep-grid');
  await expect(grid).toHaveValue('steps.0.bits=4,8\nsteps.0.blockSize=32,128');
  await expect(page.getByTestId('sweep-count')).toHaveText(/^4 experiments/);
  // An invalid combination is shown before anything runs, and nothing can start.
  await grid.fill('steps.0.bits=3,4');
  await expect(page.getByTestId('sweep-problems')).toContainText('bits=3');
  await expect(page.getByTestId('sweep-start')).toBeDisabled();
  await grid.fill('steps.0.bits=4,8\nsteps.0.blockSize=32,128');
  await page.getByTestId('sweep-start').click();

  await expect(page.getByTestId('sweep-page')).toBeVisible();
  const members = page.getByTestId('sweep-member');
  await expect(members).toHaveCount(4);
  await expect(page.locator('[data-testid="sweep-member"][data-status="done"]')).toHaveCount(4, { timeout: 150_000 });
  await expect(members.first()).toContainText('RTN 4-bit g32 · stories260K-kv');
  const ids = await members.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
  await expect(page.getByTestId('sweep-compare')).toHaveAttribute('href', `#/compare?ids=${encodeURIComponent(ids.join(','))}`);
  // Unticking two leaves a comparison of the other two.
  await page.getByTestId('sweep-member-select').nth(1).uncheck();
  await page.getByTestId('sweep-member-select').nth(2).uncheck();
  await expect(page.getByTestId('sweep-compare')).toHaveAttribute('href', `#/compare?ids=${encodeURIComponent([ids[0], ids[3]].join(','))}`);
  await page.getByTestId('sweep-member-select').nth(3).uncheck();
  await expect(page.getByTestId('sweep-compare')).toHaveAttribute('data-disabled', 'true');
  await page.getByTestId('sweep-member-select').nth(3).check();
  await expect(page.getByTestId('sweep-count-done')).toHaveText('4 done');
  await page.screenshot({ path: path.join(shots, 'sweep-page.png'), fullPage: true });
});
