import { expect, test } from '@playwright/test';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startServe, type ServeHandle } from './serve-helpers.ts';

// The Run step's output layout in Chromium against the real `whittle serve`: the bundled sample quantized
// to 4 bits with the Transformers.js layout; the recipe carries it and the delivered folder has
// onnx/model_q4.onnx and a config.json naming the dtype.
let serve: ServeHandle;
test.beforeAll(async () => { serve = await startServe(); });
test.afterAll(async () => { await serve?.stop(); });

test('the Run step writes the output in the layout chosen', async ({ page }) => {
  await page.goto(serve.url);
  await page.getByTestId('quantize-sample').click();
  await expect(page.getByTestId('wizard-step-model')).toBeVisible();
  await page.getByTestId('quantize-samples').fill('20');
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('wizard-step-method')).toBeVisible();
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('wizard-step-weights')).toBeVisible();
  await page.getByTestId('wizard-next').click();

  await expect(page.getByTestId('wizard-step-run')).toBeVisible();
  const layout = page.getByTestId('quantize-layout');
  await expect(layout).toHaveValue(/^Plain/);
  await layout.click();
  await page.getByRole('option', { name: /^Transformers\.js/ }).click();
  await expect(layout).toHaveValue(/^Transformers\.js/);
  await page.getByTestId('show-recipe').click();
  await expect(page.getByTestId('recipe-json')).toContainText('"layout": "transformers-js"');
  await page.getByTestId('quantize-start').click();

  await expect(page.getByTestId('wizard-step-result')).toBeVisible({ timeout: 120_000 });
  const dir = (await page.getByTestId('output-path').innerText()).trim();
  expect(existsSync(path.join(dir, 'model.onnx'))).toBe(true);
  expect(existsSync(path.join(dir, 'onnx', 'model_q4.onnx'))).toBe(true);
  const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, { dtype?: string }>;
  expect(config['transformers.js_config'].dtype).toBe('q4');
});
