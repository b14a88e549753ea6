import { expect, test, type Page } from '@playwright/test';
import path from 'node:path';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// The Train wizard in Chromium against the real `whittle serve`: the bundled sample fine-tuned for a few
// steps (B = 2, T = 32) on its calibration text, the held-out loss measured on its evaluation text, the
// live loss chart and figures while it runs, then the comparison with the original and the curve kept in
// the history.
let serve: ServeHandle;
test.beforeAll(async () => { serve = await startServe(); });
test.afterAll(async () => { await serve?.stop(); });

const shots = path.join(projectRoot, 'test-results', 'screenshots');
const numberIn = async (page: Page, testId: string): Promise<number> => Number(await page.getByTestId(testId).getAttribute('data-value'));

test('fine-tune the bundled sample for a few steps, watch the loss chart, and compare it with the original', async ({ page }) => {
  await page.goto(serve.url);
  await page.getByTestId('train-sample').click();

  // 1. Model: prefilled for the sample; a few documents for the comparison.
  await expect(page.getByTestId('wizard-step-model')).toBeVisible();
  await expect(page.getByTestId('nav-train')).toHaveAttribute('aria-current', 'page');
  await expect(page.getByTestId('train-model-path')).toHaveValue(/stories260K-kv\.onnx$/);
  await page.getByTestId('train-window').fill('64');
  await page.getByTestId('train-samples').fill('20');
  await page.getByTestId('wizard-next').click();

  // 2. Data: the step's card from its description; the training text is the sample's calibration text.
  await expect(page.getByTestId('wizard-step-data')).toBeVisible();
  await expect(page.getByTestId('train-card')).toContainText('Fine-tune — next-token loss');
  await expect(page.getByTestId('train-text-path')).toHaveValue(/tinystories-calibration\.txt$/);
  await page.getByTestId('train-eval-every').fill('2');
  await page.getByTestId('wizard-next').click();

  // 3. Settings: a learning rate of 0 is refused on its field; then 4 steps of B 2 × T 32.
  await expect(page.getByTestId('wizard-step-settings')).toBeVisible();
  await page.getByTestId('train-steps').fill('4');
  await page.getByTestId('train-batch').fill('2');
  await page.getByTestId('train-length').fill('32');
  await page.getByTestId('train-lr').fill('0');
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('wizard-step-settings')).toContainText('above 0');
  await page.getByTestId('train-lr').fill('0.001');
  await page.getByTestId('train-freeze-embedding').check();
  await page.getByTestId('wizard-next').click();

  // 4. Run: the recipe, then the live curves.
  await expect(page.getByTestId('wizard-step-run')).toBeVisible();
  await expect(page.getByTestId('train-review')).toContainText('4 steps · B 2 × T 32');
  await page.getByTestId('show-recipe').click();
  await expect(page.getByTestId('recipe-json')).toContainText('"type": "train"');
  await expect(page.getByTestId('recipe-json')).toContainText('"freeze": [');
  await page.getByTestId('train-name').fill('e2e train 4 steps');
  await page.getByTestId('train-start').click();

  const curves = page.getByTestId('train-curves');
  await expect(curves).toBeVisible();
  await expect(page.getByTestId('train-loss-chart')).toBeVisible();
  await expect(page.getByTestId('train-lr-chart')).toBeVisible();
  await expect(page.getByTestId('train-step')).toHaveText('step 4 / 4');
  await expect(curves).toHaveAttribute('data-points', '4');
  // The chart drew a line through the points.
  await expect(page.getByTestId('train-loss-chart').locator('path.recharts-curve').first()).toBeVisible();
  expect(Number(await page.getByTestId('train-loss').textContent())).toBeGreaterThan(0);
  await expect(page.getByTestId('train-eval-loss')).toContainText('→');
  expect(Number((await page.getByTestId('train-tokens-per-s').textContent())!.replace(/[^\d.]/g, ''))).toBeGreaterThan(0);
  await page.screenshot({ path: path.join(shots, 'train-run.png'), fullPage: true });

  // 5. Result: the comparison on the evaluation text, and the curve with the step's details.
  await expect(page.getByTestId('wizard-step-result')).toBeVisible({ timeout: 120_000 });
  expect(await numberIn(page, 'compare-original-perplexity')).toBeGreaterThan(1);
  expect(await numberIn(page, 'compare-result-perplexity')).toBeGreaterThan(1);
  await expect(page.getByTestId('method-details')).toHaveAttribute('data-method', 'train');
  await expect(page.getByTestId('wizard-step-result').getByTestId('train-curves')).toHaveAttribute('data-points', '4');
  await page.screenshot({ path: path.join(shots, 'train-compare.png'), fullPage: true });

  // The history lists it as a train experiment with its curve; a finished run offers no Resume; the wizard reopens pre-filled.
  await page.getByTestId('nav-history').click();
  const row = page.getByTestId('history-row').filter({ hasText: 'e2e train 4 steps' });
  await expect(row).toHaveAttribute('data-status', 'done');
  await row.getByTestId('history-row-name').click();
  await expect(page.getByTestId('history-detail')).toContainText('train');
  await expect(page.getByTestId('detail-resume')).toHaveCount(0);
  await expect(page.getByTestId('history-detail').getByTestId('train-curves')).toHaveAttribute('data-points', '4');
  await page.getByTestId('detail-compare').click();
  await expect(page.getByTestId('wizard-step-result')).toBeVisible();
  await page.getByTestId('quantize-again').click();
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('train-steps')).toHaveValue('4');
});

/**
 * Clicks a button of the job panel while the live charts redraw around it: a user's click lands at once,
 * but Playwright's wait for a still layout can take minutes on a loaded machine.
 */
const press = async (page: Page, testId: string): Promise<void> => {
  await expect(page.getByTestId(testId)).toBeVisible();
  await page.getByTestId(testId).dispatchEvent('click');
};
const attr = async (page: Page, testId: string, name: string): Promise<number> => Number(await page.getByTestId(testId).getAttribute(name));

test('a cancelled training run shows Resume in the history and continues the same curve', async ({ page }) => {
  // Two runs, a cancel each and the history in between: on a loaded 2-core machine this takes minutes.
  test.setTimeout(420_000);
  await page.goto(serve.url);
  await page.getByTestId('train-sample').click();
  await page.getByTestId('train-samples').fill('10');
  await page.getByTestId('wizard-next').click();
  await page.getByTestId('train-heldout-toggle').click({ force: true });
  await page.getByTestId('wizard-next').click();
  await page.getByTestId('train-steps').fill('5000');
  await page.getByTestId('train-batch').fill('4');
  await page.getByTestId('train-length').fill('128');
  await page.getByTestId('train-checkpoint-every').fill('2');
  await page.getByTestId('wizard-next').click();
  await page.getByTestId('train-name').fill('e2e train resume');
  await page.getByTestId('train-start').click();

  // Cancel part-way: a checkpoint is written at the cancel.
  await expect.poll(() => attr(page, 'train-curves', 'data-step'), { timeout: 120_000 }).toBeGreaterThanOrEqual(4);
  await press(page, 'job-cancel');
  await expect(page.getByTestId('job-status')).toHaveText(/cancelled/i);
  const stoppedAt = await attr(page, 'train-curves', 'data-step');

  // The history offers Resume for the cancelled run.
  await page.getByTestId('nav-history').click();
  const row = page.getByTestId('history-row').filter({ hasText: 'e2e train resume' });
  await expect(row).toHaveAttribute('data-status', 'cancelled');
  await row.getByTestId('history-row-name').click();
  await page.getByTestId('detail-resume').click();

  // A new job attached to the wizard: the earlier curve at once, then steps past where the first run stopped,
  // one point per step from step 1 (the same curve, continued).
  await expect(page.getByTestId('wizard-step-run')).toBeVisible();
  await expect(page.getByTestId('job-panel')).toBeVisible();
  await expect.poll(() => attr(page, 'train-curves', 'data-step'), { timeout: 120_000 }).toBeGreaterThan(stoppedAt + 2);
  await press(page, 'job-cancel');
  await expect(page.getByTestId('job-status')).toHaveText(/cancelled/i);
  const step = await attr(page, 'train-curves', 'data-step');
  expect(await attr(page, 'train-curves', 'data-points')).toBe(step);

  // The resumed run is an experiment of its own, and can be resumed in turn.
  await page.getByTestId('nav-history').click();
  const resumed = page.getByTestId('history-row').filter({ hasText: 'e2e train resume (resumed)' });
  await expect(resumed).toHaveAttribute('data-status', 'cancelled');
  await resumed.getByTestId('history-row-name').click();
  await expect(page.getByTestId('detail-resume')).toBeVisible();
});
