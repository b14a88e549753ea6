import { expect, test, type Page } from '@playwright/test';
import path from 'node:path';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// The Quantize wizard's methods in Chromium against the real `whittle serve`: the bundled sample through
// GPTQ 4-bit (calibration 16 × 128 tokens, evaluation on 50 documents) to the comparison, and the
// per-layer sensitivity analysis whose "keep the top 2 at 8-bit" writes two overrides into the recipe.
let serve: ServeHandle;
test.beforeAll(async () => { serve = await startServe(); });
test.afterAll(async () => { await serve?.stop(); });

const shots = path.join(projectRoot, 'test-results', 'screenshots');
const toTop = (page: Page): Promise<void> => page.evaluate('window.scrollTo(0, 0)');
const attrNumber = async (page: Page, testId: string, attr: string): Promise<number> => Number(await page.getByTestId(testId).getAttribute(attr));

async function shoot(page: Page, name: string): Promise<void> {
  await toTop(page);
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: path.join(shots, `${name}-dark.png`), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
}

async function openSampleWizard(page: Page): Promise<void> {
  await page.goto(serve.url);
  await expect(page.getByTestId('sample-card')).toBeVisible();
  await page.getByTestId('quantize-sample').click();
  await expect(page.getByTestId('wizard-step-model')).toBeVisible();
  await expect(page.getByTestId('quantize-model-path')).toHaveValue(/stories260K-kv\.onnx$/);
}

test('GPTQ 4-bit on the sample: method cards, calibration, and the comparison with GPTQ\u2019s losses', async ({ page }) => {
  await openSampleWizard(page);
  await page.getByTestId('quantize-samples').fill('50');
  await page.getByTestId('quantize-speed-toggle').click({ force: true });
  await page.getByTestId('wizard-next').click();

  // Method: five cards, each with a size estimate, calibration need and expected quality.
  await expect(page.getByTestId('wizard-step-method')).toBeVisible();
  for (const m of ['rtn', 'gptq', 'fp16', 'int8-dynamic', 'int8-static']) {
    await expect(page.getByTestId(`method-estimate-${m}`)).toHaveAttribute('data-after', /\d+/);
  }
  const rtnSize = await attrNumber(page, 'method-estimate-rtn', 'data-after');
  expect(await attrNumber(page, 'method-estimate-gptq', 'data-after')).toBe(rtnSize);
  expect(await attrNumber(page, 'method-estimate-fp16', 'data-after')).toBeGreaterThan(await attrNumber(page, 'method-estimate-int8-dynamic', 'data-after'));
  expect(await attrNumber(page, 'method-estimate-int8-dynamic', 'data-after')).toBeGreaterThan(rtnSize);
  await expect(page.getByTestId('method-fp16')).toContainText('nearly lossless');
  await expect(page.getByTestId('method-rtn')).toContainText('No calibration data needed.');
  await expect(page.getByTestId('calibration-panel')).toHaveCount(0);

  await page.getByTestId('method-gptq').click();
  await expect(page.getByTestId('method-gptq')).toHaveAttribute('aria-checked', 'true');
  await expect(page.getByTestId('method-gptq')).toContainText('better than RTN at the same size');
  await expect(page.getByTestId('rtn-vs-gptq')).toContainText('GPTQ rounds one input row at a time');
  // The sample brings a calibration text of its own, clear of the evaluation text.
  await expect(page.getByTestId('calib-text')).toHaveValue(/tinystories-calibration\.txt$/);
  await expect(page.getByTestId('calib-overlap-warning')).toHaveCount(0);
  await expect(page.getByTestId('calib-samples')).toHaveValue('128');
  await expect(page.getByTestId('calib-length')).toHaveValue('256');
  await page.getByTestId('calib-samples').fill('16');
  await page.getByTestId('calib-length').fill('128');
  await expect(page.getByTestId('method-calibration-gptq')).toContainText('16 × 128 = 2,048 tokens of calibration');
  await expect(page.getByTestId('method-calibration-gptq')).toContainText('(estimate)');
  await page.getByTestId('act-order-toggle').click({ force: true });
  await expect(page.getByTestId('percdamp')).toHaveValue('0.01');
  await expect(page.getByTestId('size-estimate')).toHaveAttribute('data-after', String(rtnSize));
  await shoot(page, 'quantize-gptq');
  await page.getByTestId('wizard-next').click();

  // Weights: 35 weights at 4 bits.
  await expect(page.getByTestId('wizard-step-weights')).toBeVisible();
  await expect(page.locator('[data-testid="weight-row"][data-action="quantize"][data-bits="4"]')).toHaveCount(35);
  await page.getByTestId('wizard-next').click();

  // Run: the recipe carries GPTQ and its calibration.
  await expect(page.getByTestId('wizard-step-run')).toBeVisible();
  await expect(page.getByTestId('quantize-review')).toContainText('16 × 128 tokens, seed 0');
  await page.getByTestId('show-recipe').click();
  const recipe = JSON.parse(await page.getByTestId('recipe-json').innerText()) as { steps: Record<string, unknown>[]; evaluation: { perplexity: { maxSamples: number } } };
  expect(recipe.steps[0]).toMatchObject({ method: 'gptq', bits: 4, actOrder: true, percdamp: 0.01, calibration: { samples: 16, length: 128, seed: 0 } });
  expect(String((recipe.steps[0].calibration as { text: string }).text)).toMatch(/tinystories-calibration\.txt$/);
  expect(recipe.evaluation.perplexity.maxSamples).toBe(50);
  await page.getByTestId('quantize-name').fill('e2e gptq 4-bit');
  await page.getByTestId('quantize-start').click();
  await expect(page.getByTestId('job-panel')).toBeVisible();

  // Result: the comparison, and GPTQ's loss per weight.
  await expect(page.getByTestId('wizard-step-result')).toBeVisible({ timeout: 90_000 });
  const pplOriginal = Number(await page.getByTestId('compare-original-perplexity').getAttribute('data-value'));
  const pplResult = Number(await page.getByTestId('compare-result-perplexity').getAttribute('data-value'));
  expect(pplOriginal).toBeGreaterThan(3);
  expect(pplResult).toBeGreaterThan(3);
  expect(pplResult).toBeLessThan(pplOriginal * 1.5);
  expect(Number(await page.getByTestId('compare-result-bytes_on_disk').getAttribute('data-value'))).toBeLessThan(1_090_282 * 0.6);
  await expect(page.getByTestId('result-summary')).toContainText('GPTQ 4-bit');
  await expect(page.getByTestId('method-details')).toHaveAttribute('data-method', 'gptq');
  await expect(page.getByTestId('gptq-loss-row')).toHaveCount(35);
  await shoot(page, 'quantize-gptq-result');
});

test('sensitivity: measure, a sorted chart with one row per weight, keep the top 2 at 8-bit', async ({ page }) => {
  await openSampleWizard(page);
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('method-rtn')).toHaveAttribute('aria-checked', 'true');
  await page.getByTestId('wizard-next').click();

  await expect(page.getByTestId('wizard-step-weights')).toBeVisible();
  await expect(page.getByTestId('weight-row')).toHaveCount(39);
  const before = await attrNumber(page, 'size-estimate', 'data-after');
  await expect(page.getByTestId('calib-text')).toHaveValue(/tinystories-calibration\.txt$/);
  await expect(page.getByTestId('sensitivity-estimate')).toContainText('35 candidates');
  await page.getByTestId('calib-length').fill('128');
  await page.getByTestId('sensitivity-samples').fill('4');
  await page.getByTestId('measure-sensitivity').click();
  await expect(page.getByTestId('job-panel')).toBeVisible();

  // The ranking: one row per quantizable weight, most sensitive first.
  const chart = page.getByTestId('sensitivity-chart');
  await expect(chart).toBeVisible({ timeout: 60_000 });
  const rows = page.getByTestId('sensitivity-row');
  await expect(rows).toHaveCount(35);
  const kls = await rows.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-kl'))));
  expect(kls.every((kl, i) => kl > 0 && (i === 0 || kl <= kls[i - 1]))).toBe(true);
  await expect(chart.locator('.recharts-bar-rectangle').first()).toBeVisible();
  const top2 = await rows.evaluateAll((els) => els.slice(0, 2).map((e) => e.getAttribute('data-name')!));

  // One click writes the two overrides into the step: the weights table and the estimate follow.
  await page.getByTestId('keep-top-k').fill('2');
  await page.getByTestId('keep-top-8bit').click();
  await expect(page.getByTestId('overrides-summary')).toHaveAttribute('data-count', '2');
  await expect(page.locator('[data-testid="sensitivity-row"][data-state="8-bit"]')).toHaveCount(2);
  const eight = page.locator('[data-testid="weight-row"][data-bits="8"]');
  await expect(eight).toHaveCount(2);
  expect((await eight.evaluateAll((els) => els.map((e) => e.getAttribute('data-name')!))).sort()).toEqual([...top2].sort());
  await expect(eight.first().getByTestId('weight-action')).toHaveText('8-bit');
  await expect.poll(() => attrNumber(page, 'size-estimate', 'data-after')).toBeGreaterThan(before);
  await shoot(page, 'sensitivity');

  // The recipe shows the two overrides.
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('wizard-step-run')).toBeVisible();
  await page.getByTestId('show-recipe').click();
  const recipe = JSON.parse(await page.getByTestId('recipe-json').innerText()) as { steps: { method: string; bits: number; overrides: { pattern: string; bits: number }[] }[] };
  expect(recipe.steps[0]).toMatchObject({ method: 'rtn', bits: 4 });
  expect(recipe.steps[0].overrides).toHaveLength(2);
  for (const o of recipe.steps[0].overrides) {
    expect(o.bits).toBe(8);
    expect(top2.filter((name) => new RegExp(o.pattern).test(name))).toHaveLength(1);
  }

  // "Keep the top 2 in float" instead moves them to the keep patterns.
  await page.getByTestId('wizard-back').click();
  await page.getByTestId('keep-top-float').click();
  await expect(page.getByTestId('overrides-summary')).toHaveCount(0);
  await expect(page.locator('[data-testid="weight-row"][data-action="keep"]')).toHaveCount(2);
  await expect(page.getByTestId('keep-patterns')).toHaveValue(/weight_t\$\n\^model/);

  // Back to the Method step and forward again, settings unchanged: the measurement is shown, not made again;
  // each step opens at the top of the page.
  const analysis = await page.getByText(/The analysis is kept as experiment #\d+/).innerText();
  await page.evaluate('window.scrollTo(0, document.body.scrollHeight)');
  await page.getByTestId('wizard-back').click();
  await expect(page.getByTestId('wizard-step-method')).toBeVisible();
  await expect.poll(() => page.evaluate('window.scrollY')).toBe(0);
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('sensitivity-chart')).toBeVisible();
  await expect(page.getByTestId('measure-sensitivity')).toHaveText('Measure again');
  await expect(page.getByText(/The analysis is kept as experiment #\d+/)).toHaveText(analysis);
  // Other bits are other inputs: no result for them until measured.
  await page.getByTestId('wizard-back').click();
  await page.getByTestId('bits-select').getByText('8-bit').click();
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('sensitivity-chart')).toHaveCount(0);
  await expect(page.getByTestId('measure-sensitivity')).toHaveText('Measure sensitivity');
});
