import { expect, test } from '@playwright/test';
import path from 'node:path';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// The Quantize wizard's KD-QAT method in Chromium against the real `whittle serve`: the bundled sample
// trained 20 steps through 4-bit fake quantization with ov-freeze (training text: the sample's
// calibration text), its curves live on the Run step, then the comparison with the step's details.
let serve: ServeHandle;
test.beforeAll(async () => { serve = await startServe(); });
test.afterAll(async () => { await serve?.stop(); });

const shots = path.join(projectRoot, 'test-results', 'screenshots');

test('KD-QAT 4-bit with ov-freeze on the sample: the card, its fields, live curves and the result', async ({ page }) => {
  await page.goto(serve.url);
  await expect(page.getByTestId('sample-card')).toBeVisible();
  await page.getByTestId('quantize-sample').click();
  await expect(page.getByTestId('wizard-step-model')).toBeVisible();
  await page.getByTestId('quantize-samples').fill('30');
  await page.getByTestId('wizard-next').click();

  // Method: the KD-QAT card with its size estimate (the same tensors as RTN) and its fields.
  await expect(page.getByTestId('wizard-step-method')).toBeVisible();
  await expect(page.getByTestId('method-qat')).toContainText('KD-QAT (quantization-aware training)');
  await expect(page.getByTestId('method-estimate-qat')).toHaveAttribute('data-after', /\d+/);
  const rtnSize = await page.getByTestId('method-estimate-rtn').getAttribute('data-after');
  await expect(page.getByTestId('method-estimate-qat')).toHaveAttribute('data-after', rtnSize!);
  await page.getByTestId('method-qat').click();
  await expect(page.getByTestId('method-qat')).toHaveAttribute('aria-checked', 'true');
  await expect(page.getByTestId('qat-fields')).toBeVisible();
  await expect(page.getByTestId('qat-text')).toHaveValue(/tinystories-calibration\.txt$/);
  await expect(page.getByTestId('calibration-panel')).toHaveCount(0);
  await page.getByTestId('qat-ov-freeze').click({ force: true });
  await page.getByTestId('qat-steps').fill('20');
  await page.getByTestId('qat-lr').fill('0.0002');
  await page.getByTestId('wizard-next').click();

  // Weights, then Run: the recipe carries the KD-QAT step.
  await expect(page.getByTestId('wizard-step-weights')).toBeVisible();
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('wizard-step-run')).toBeVisible();
  await expect(page.getByTestId('quantize-review')).toContainText('KD-QAT 4-bit, block 32');
  await page.getByTestId('show-recipe').click();
  const recipe = JSON.parse(await page.getByTestId('recipe-json').innerText()) as { steps: Record<string, unknown>[] };
  expect(recipe.steps[0]).toMatchObject({ type: 'quantize', method: 'qat', bits: 4, blockSize: 32, freezeRoles: ['o', 'v'], steps: 20, lr: 0.0002 });
  await page.getByTestId('quantize-start').click();

  // The curves stream on the Run step while the model trains.
  await expect(page.getByTestId('wizard-step-run').getByTestId('train-curves')).toBeVisible({ timeout: 90_000 });
  await page.screenshot({ path: path.join(shots, 'quantize-qat-run.png'), fullPage: true });

  // Result: the comparison and the step's details with the whole curve.
  await expect(page.getByTestId('wizard-step-result')).toBeVisible({ timeout: 150_000 });
  expect(Number(await page.getByTestId('compare-result-perplexity').getAttribute('data-value'))).toBeGreaterThan(1);
  await expect(page.getByTestId('method-details')).toHaveAttribute('data-method', 'qat');
  await expect(page.getByTestId('qat-frozen')).toHaveText('o, v');
  expect(Number(await page.getByTestId('qat-quantized').textContent())).toBeGreaterThan(0);
  await expect(page.getByTestId('wizard-step-result').getByTestId('train-curves')).toHaveAttribute('data-points', '20');
  await page.screenshot({ path: path.join(shots, 'quantize-qat-result.png'), fullPage: true });
});
