import { expect, test } from '@playwright/test';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// "Export GGUF & evaluate in llama.cpp" on a done quantize experiment's page, against the real
// `whittle serve`: an RTN 4-bit block-32 asymmetric run of the bundled sample (made by the CLI on the
// served history), Q4_1 chosen by default, and both perplexities — onnxruntime's of the ONNX result and
// llama.cpp's of the GGUF, on the same text and protocol — side by side, and again after a reload.
let serve: ServeHandle;
test.beforeAll(async () => { serve = await startServe(); });
test.afterAll(async () => { await serve?.stop(); });

const sample = path.join(projectRoot, 'main', 'resources', 'sample');
const run = promisify(execFile);

test('a 4-bit quantization exported as Q4_1 and evaluated in llama.cpp, beside the ONNX result', async ({ page }) => {
  const { stdout } = await run(process.execPath, [
    path.join(projectRoot, 'out', 'cli.cjs'), 'quantize', '--bits', '4', '--name', 'e2e RTN 4-bit', path.join(sample, 'stories260K-kv.onnx'),
    '--eval-text', path.join(sample, 'tinystories-eval.txt'), '--samples', '20', '--home', serve.home, '--json', '-q',
  ], { timeout: 120_000 });
  const id = (JSON.parse(stdout) as { experimentId: number }).experimentId;

  await page.goto(serve.url);
  await page.evaluate(`location.hash = '#/history/${id}'`);
  const panel = page.getByTestId('gguf-panel');
  await expect(panel).toBeVisible();
  await expect(page.getByTestId('gguf-type')).toHaveValue(/Q4_1/);
  await page.getByTestId('gguf-evaluate').click();

  await expect(page.getByTestId('gguf-result')).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('gguf-path')).toContainText('.gguf');
  await expect(page.getByTestId('gguf-protocol')).toContainText('same text and protocol');
  const onnx = Number(await page.getByTestId('gguf-onnx-perplexity').textContent());
  const llama = Number(await page.getByTestId('gguf-llama-perplexity').textContent());
  expect(onnx).toBeGreaterThan(1);
  expect(Math.abs(llama / onnx - 1)).toBeLessThan(0.01);

  // Recorded in the history: the page shows it again after a reload, without running llama.cpp again.
  await page.reload();
  await expect(page.getByTestId('gguf-llama-perplexity')).toHaveText(llama.toFixed(4));
});
