import { expect, test, type Page } from '@playwright/test';
import path from 'node:path';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// The Prune wizard in Chromium against the real `whittle serve`: the bundled sample pruned 50 % by
// magnitude (no calibration), evaluated on a few documents, to the comparison with the sparsity table.
let serve: ServeHandle;
test.beforeAll(async () => { serve = await startServe(); });
test.afterAll(async () => { await serve?.stop(); });

const shots = path.join(projectRoot, 'test-results', 'screenshots');
const numberIn = async (page: Page, testId: string): Promise<number> => Number(await page.getByTestId(testId).getAttribute('data-value'));

test('prune the bundled sample 50 % by magnitude and compare it with the original', async ({ page }) => {
  await page.goto(serve.url);
  await page.getByTestId('prune-sample').click();

  // 1. Model: prefilled for the sample; a few documents, no speed test (kept short).
  await expect(page.getByTestId('wizard-step-model')).toBeVisible();
  await expect(page.getByTestId('nav-prune')).toHaveAttribute('aria-current', 'page');
  await expect(page.getByTestId('prune-model-path')).toHaveValue(/stories260K-kv\.onnx$/);
  await page.getByTestId('prune-samples').fill('20');
  await page.getByTestId('prune-speed-toggle').click({ force: true });
  await page.getByTestId('wizard-next').click();

  // 2. Method: cards from the step descriptions, and the honest note before running.
  await expect(page.getByTestId('wizard-step-method')).toBeVisible();
  await expect(page.getByTestId('method-magnitude')).toHaveAttribute('aria-checked', 'true');
  await expect(page.getByTestId('method-wanda')).toContainText('far better than magnitude');
  await expect(page.getByTestId('prune-gain-note')).toContainText('not smaller');
  await page.getByTestId('method-structured').click();
  await expect(page.getByTestId('prune-gain-note')).toContainText('smaller and onnxruntime runs it faster');
  await page.getByTestId('method-magnitude').click();
  await page.getByTestId('wizard-next').click();

  // 3. Targets: 50 %, unstructured, per weight; no calibration asked.
  await expect(page.getByTestId('wizard-step-targets')).toBeVisible();
  await expect(page.getByTestId('prune-sparsity-value')).toHaveText('50 %');
  await expect(page.getByTestId('calibration-fields')).toHaveCount(0);
  await page.getByTestId('prune-sparsity').fill('1.5');
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('wizard-step-targets')).toContainText('below 100 %');
  await page.getByTestId('prune-sparsity').fill('0.5');
  await page.getByTestId('wizard-next').click();

  // 4. Run.
  await expect(page.getByTestId('wizard-step-run')).toBeVisible();
  await page.getByTestId('show-recipe').click();
  await expect(page.getByTestId('recipe-json')).toContainText('"method": "magnitude"');
  await expect(page.getByTestId('recipe-json')).toContainText('"sparsity": 0.5');
  await page.getByTestId('prune-name').fill('e2e prune magnitude 50');
  await page.getByTestId('prune-start').click();

  // 5. Result: the comparison with size compressed, and the sparsity table.
  await expect(page.getByTestId('wizard-step-result')).toBeVisible({ timeout: 60_000 });
  const pplOriginal = await numberIn(page, 'compare-original-perplexity');
  expect(await numberIn(page, 'compare-result-perplexity')).toBeGreaterThan(pplOriginal);
  await expect(page.getByTestId('compare-row-bytes_compressed')).toBeVisible();
  expect(await numberIn(page, 'compare-result-bytes_compressed')).toBeLessThan(await numberIn(page, 'compare-original-bytes_compressed'));
  const rows = page.getByTestId('sparsity-row');
  expect(await rows.count()).toBeGreaterThan(0);
  for (const s of await rows.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-sparsity'))))) expect(s).toBeCloseTo(0.5, 2);
  await expect(page.getByTestId('sparsity-chart')).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'prune-compare.png'), fullPage: true });

  // The history entry opens the wizard pre-filled with its recipe.
  await page.getByTestId('nav-history').click();
  const row = page.getByTestId('history-row').filter({ hasText: 'e2e prune magnitude 50' });
  await expect(row).toHaveAttribute('data-status', 'done');
  await row.getByTestId('history-row-name').click();
  await page.getByTestId('detail-compare').click();
  await expect(page.getByTestId('wizard-step-result')).toBeVisible();
  await page.getByTestId('quantize-again').click();
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('prune-sparsity')).toHaveValue('0.5');
});
