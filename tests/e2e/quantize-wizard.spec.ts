import { expect, test, type Page } from '@playwright/test';
import path from 'node:path';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// The Quantize wizard in Chromium against the real `whittle serve`: the bundled sample through every
// step (4-bit RTN, block 32, evaluation on 100 documents) to the comparison of original and result.
let serve: ServeHandle;
test.beforeAll(async () => { serve = await startServe(); });
test.afterAll(async () => { await serve?.stop(); });

const shots = path.join(projectRoot, 'test-results', 'screenshots');

const numberIn = async (page: Page, testId: string): Promise<number> => Number(await page.getByTestId(testId).getAttribute('data-value'));
/** The app header is fixed: scrolled to the top, a full-page screenshot shows it once, at the top. */
const toTop = (page: Page): Promise<void> => page.evaluate('window.scrollTo(0, 0)');
const estimateAfter = async (page: Page): Promise<number> => Number(await page.getByTestId('size-estimate').getAttribute('data-after'));

test('quantize the bundled sample to 4 bits and compare it with the original', async ({ page }) => {
  await page.goto(serve.url);
  await expect(page.getByTestId('sample-card')).toBeVisible();
  await page.getByTestId('quantize-sample').click();

  // 1. Model: prefilled for the sample.
  await expect(page.getByTestId('wizard-step-model')).toBeVisible();
  await expect(page.getByTestId('nav-quantize')).toHaveAttribute('aria-current', 'page');
  await expect(page.getByTestId('quantize-model-path')).toHaveValue(/stories260K-kv\.onnx$/);
  await expect(page.getByTestId('quantize-tokenizer-path')).toHaveValue(/tokenizer\.json$/);
  await expect(page.getByTestId('quantize-text-path')).toHaveValue(/tinystories-eval\.txt$/);
  await page.getByTestId('quantize-samples').fill('100');
  await page.screenshot({ path: path.join(shots, 'quantize-model.png'), fullPage: true });
  await page.getByTestId('wizard-next').click();

  // 2. Method: RTN card; bits is a segmented control (radio inputs), the others native <select>s.
  await expect(page.getByTestId('wizard-step-method')).toBeVisible();
  await expect(page.getByTestId('method-rtn')).toHaveAttribute('aria-checked', 'true');
  await expect(page.getByTestId('method-rtn')).toContainText('Good at 8-bit, noticeably lossy at 4-bit on small models.');
  await expect(page.getByTestId('wizard-step-method')).toContainText('4 (int8) is the only level at which ONNX Runtime\'s CPU uses its fast integer kernel');
  await expect(page.getByTestId('size-estimate')).toHaveAttribute('data-after', /\d+/);
  const after4 = await estimateAfter(page);
  await page.getByTestId('bits-select').getByText('8-bit').click();
  await expect.poll(() => estimateAfter(page)).toBeGreaterThan(after4);
  await page.getByTestId('bits-select').getByText('4-bit').click();
  await expect.poll(() => estimateAfter(page)).toBe(after4);
  await page.getByTestId('block-size').selectOption('32');
  await expect(page.getByTestId('accuracy-level')).toHaveValue('4');
  await expect(page.getByTestId('format-select')).toHaveValue('matmulnbits');
  await toTop(page);
  await page.screenshot({ path: path.join(shots, 'quantize-method.png'), fullPage: true });
  await page.getByTestId('wizard-next').click();

  // 3. Weights: the plan, keep toggles, the estimate before running.
  await expect(page.getByTestId('wizard-step-weights')).toBeVisible();
  const rows = page.getByTestId('weight-row');
  await expect(rows).toHaveCount(39);
  await expect(page.locator('[data-testid="weight-row"][data-action="quantize"]')).toHaveCount(35);
  await expect(page.locator('[data-testid="weight-row"][data-action="skip"]')).toHaveCount(4);
  await expect(page.locator('[data-testid="weight-row"][data-name="rope_cos"]')).toContainText('rotary');
  const estimate = page.getByTestId('size-estimate');
  await expect(estimate).toContainText('1.04 MiB');
  await expect(estimate).toContainText(/\d+ KiB/);
  const q0 = page.locator('[data-testid="weight-row"][data-name="model.layers.0.self_attn.q_proj.weight_t"]');
  await q0.getByTestId('weight-keep-toggle').click({ force: true });
  await expect(page.getByTestId('keep-patterns')).toHaveValue('^model\\.layers\\.0\\.self_attn\\.q_proj\\.weight_t$');
  await expect(q0).toHaveAttribute('data-action', 'keep');
  await expect.poll(() => estimateAfter(page)).toBeGreaterThan(after4);
  await toTop(page);
  await page.screenshot({ path: path.join(shots, 'quantize-weights.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: path.join(shots, 'quantize-weights-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  await q0.getByTestId('weight-keep-toggle').click({ force: true });
  await expect(page.getByTestId('keep-patterns')).toHaveValue('');
  await expect(q0).toHaveAttribute('data-action', 'quantize');
  await expect.poll(() => estimateAfter(page)).toBe(after4);
  await page.getByTestId('wizard-next').click();

  // 4. Run: the recipe, then the job.
  await expect(page.getByTestId('wizard-step-run')).toBeVisible();
  await page.getByTestId('show-recipe').click();
  const recipe = page.getByTestId('recipe-json');
  await expect(recipe).toContainText('"method": "rtn"');
  await expect(recipe).toContainText('"bits": 4');
  await expect(recipe).toContainText('"blockSize": 32');
  await expect(recipe).toContainText('"maxSamples": 100');
  await page.getByTestId('quantize-name').fill('e2e quantize 4-bit');
  await page.getByTestId('quantize-start').click();
  await expect(page.getByTestId('job-panel')).toBeVisible();

  // 5. Result: original and result side by side.
  await expect(page.getByTestId('wizard-step-result')).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('compare-table')).toBeVisible();
  const pplOriginal = await numberIn(page, 'compare-original-perplexity');
  const pplResult = await numberIn(page, 'compare-result-perplexity');
  expect(pplOriginal).toBeGreaterThan(3);
  expect(pplResult).toBeGreaterThan(pplOriginal);
  await expect(page.getByTestId('compare-change-perplexity')).toHaveAttribute('data-verdict', 'worse');
  const sizeOriginal = await numberIn(page, 'compare-original-bytes_on_disk');
  const sizeResult = await numberIn(page, 'compare-result-bytes_on_disk');
  expect(sizeOriginal).toBe(1_090_282);
  expect(sizeResult).toBeLessThan(sizeOriginal * 0.6);
  await expect(page.getByTestId('compare-original-bytes_on_disk')).toHaveText('1.04 MiB');
  await expect(page.getByTestId('compare-row-bits_per_weight')).toBeVisible();
  await expect(page.getByTestId('compare-chart')).toBeVisible();
  await expect(page.getByTestId('compare-chart').locator('.recharts-bar-rectangle').first()).toBeVisible();
  const pairs = page.getByTestId('samples-side-by-side').getByTestId('sample-pair');
  await expect(pairs).toHaveCount(3);
  await expect(pairs.first().getByTestId('sample-original')).toContainText('Once upon a time');
  await expect(pairs.first().getByTestId('sample-result')).not.toHaveText('Once upon a time');
  await expect(page.getByTestId('skipped-weights')).toContainText('rope_cos');
  await expect(page.getByTestId('output-path')).toContainText('/experiments/');
  await page.getByTestId('reveal-output').click();
  await expect(page.getByTestId('reveal-reason')).toContainText('on the machine running Whittle');
  await toTop(page);
  await page.screenshot({ path: path.join(shots, 'quantize-compare.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: path.join(shots, 'quantize-compare-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });

  // A reload re-attaches to the finished job from the history.
  await page.reload();
  await expect(page.getByTestId('wizard-step-result')).toBeVisible();
  expect(await numberIn(page, 'compare-result-perplexity')).toBe(pplResult);

  // "Quantize again" returns to the method with the settings kept.
  await page.getByTestId('quantize-again').click();
  await expect(page.getByTestId('wizard-step-method')).toBeVisible();
  await expect(page.getByTestId('block-size')).toHaveValue('32');
  await page.getByTestId('wizard-back').click();
  await expect(page.getByTestId('quantize-samples')).toHaveValue('100');

  // The history entry links back to the comparison.
  await page.getByTestId('nav-history').click();
  const row = page.getByTestId('history-row').filter({ hasText: 'e2e quantize 4-bit' });
  await expect(row).toHaveAttribute('data-status', 'done');
  await row.getByTestId('history-row-name').click();
  await page.getByTestId('detail-compare').click();
  await expect(page.getByTestId('wizard-step-result')).toBeVisible();
  expect(await numberIn(page, 'compare-original-perplexity')).toBe(pplOriginal);
});

test('the wizard stops on a model that is not there and on a broken keep pattern', async ({ page }) => {
  await page.goto(serve.url);
  await expect(page.getByTestId('sample-card')).toBeVisible();
  await page.getByTestId('nav-quantize').click();
  await expect(page.getByTestId('wizard-step-model')).toBeVisible();
  await page.getByTestId('quantize-model-path').fill(path.join(projectRoot, 'no-such-model.onnx'));
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('quantize-tokenizer-path')).toHaveAttribute('aria-invalid', 'true');
  await page.getByTestId('quantize-evaluate-toggle').click({ force: true });
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('quantize-model-error')).toHaveAttribute('data-error-code', 'NOT_FOUND');
  await expect(page.getByTestId('wizard-step-model')).toBeVisible();

  await page.getByTestId('quantize-use-sample').click();
  await page.getByTestId('wizard-next').click();
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('weights-table')).toBeVisible();
  await page.getByTestId('keep-patterns').fill('q_proj(');
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('wizard-step-weights')).toContainText('"q_proj(" is not a valid regular expression');
  await page.getByTestId('keep-patterns').fill('q_proj');
  await expect(page.locator('[data-testid="weight-row"][data-action="keep"]')).toHaveCount(5);
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('wizard-step-run')).toBeVisible();
});
