import { expect, test } from '@playwright/test';
import path from 'node:path';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// The whole first-run flow in Chromium against the real `whittle serve`: open the bundled sample,
// evaluate it, read the perplexity, reload, and find the experiment in the history.
let serve: ServeHandle;
test.beforeAll(async () => { serve = await startServe(); });
test.afterAll(async () => { await serve?.stop(); });

const shots = path.join(projectRoot, 'test-results', 'screenshots');

test('evaluate the bundled sample and find it in the history', async ({ page }) => {
  await page.goto(serve.url);
  await expect(page.getByTestId('sample-card')).toBeVisible();
  // The token leaves the address bar once read.
  await expect.poll(() => page.url()).not.toContain('token=');

  await page.getByTestId('evaluate-sample').click();
  await expect(page.getByTestId('eval-tokenizer-path')).toHaveValue(/tokenizer\.json$/);
  await expect(page.getByTestId('eval-text-path')).toHaveValue(/tinystories-eval\.txt$/);
  await page.getByTestId('eval-name').fill('e2e sample evaluation');
  await page.getByTestId('evaluate-start').click();

  await expect(page.getByTestId('job-panel')).toBeVisible();
  await expect(page.getByTestId('job-finished')).toBeVisible({ timeout: 120_000 });
  const perplexity = Number((await page.getByTestId('metric-perplexity').innerText()).replace(/,/g, ''));
  expect(perplexity).toBeGreaterThan(4.2);
  expect(perplexity).toBeLessThan(4.25);
  await expect(page.getByTestId('metric-predicted_tokens')).toHaveText('38,675');
  await page.screenshot({ path: path.join(shots, 'evaluate-result.png'), fullPage: true });

  await page.reload();
  await page.getByTestId('nav-history').click();
  const row = page.getByTestId('history-row').filter({ hasText: 'e2e sample evaluation' });
  await expect(row).toHaveCount(1);
  await expect(row).toHaveAttribute('data-status', 'done');

  await page.getByTestId('history-search').fill('no such experiment');
  await expect(page.getByTestId('history-empty')).toBeVisible();
  await page.getByTestId('history-search').fill('e2e sample');
  await expect(row).toHaveCount(1);
  await row.getByTestId('history-row-name').click();

  await expect(page.getByTestId('history-detail')).toBeVisible();
  await expect(page.getByTestId('detail-status')).toContainText(/done/i);
  await expect(page.getByTestId('detail-metrics')).toContainText('4.22');
  await expect(page.getByTestId('detail-recipe')).toContainText('"protocol": "documents"');
  await page.screenshot({ path: path.join(shots, 'history-detail.png'), fullPage: true });
});

test('a page without the token is refused, and the API answers 401', async ({ page, request }) => {
  await page.goto(`${serve.origin}/`);
  await expect(page.getByTestId('no-token')).toBeVisible();
  const res = await request.post(`${serve.origin}/api/call`, { data: { type: 'call', id: 1, method: 'app.info', params: {} } });
  expect(res.status()).toBe(401);
  expect((await res.json()).code).toBe('UNAUTHORIZED');
});

test('a model that is not ONNX shows a typed error on the model page', async ({ page }) => {
  await page.goto(serve.url);
  await expect(page.getByTestId('sample-card')).toBeVisible();
  await page.getByTestId('model-path-input').fill(path.join(projectRoot, 'README.md'));
  await page.getByTestId('open-model').click();
  await expect(page.getByTestId('model-error')).toHaveAttribute('data-error-code', 'MODEL_PARSE');
  await expect(page.getByTestId('model-error-message')).toHaveText('README.md is not an ONNX model: it looks like a text file.');
});
