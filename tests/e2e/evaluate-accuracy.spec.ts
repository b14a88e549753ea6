import { expect, test } from '@playwright/test';
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// Accuracy of the bundled sample (a decoder) on labelled prompts, from the Evaluate page against the real
// `whittle serve`: SST-2 dev's held-out share read as "Review: {text}\nSentiment:" with the answer words
// negative / positive; a template without {text} is refused on its field before anything runs.
let serve: ServeHandle;
let labels: string;
test.beforeAll(async () => {
  serve = await startServe();
  // The server reads files under its folders only: the labelled file goes into its home.
  labels = path.join(serve.home, 'sst2-glue-dev.tsv');
  copyFileSync(SST2, labels);
});
test.afterAll(async () => { await serve?.stop(); });

const SST2 = path.resolve(projectRoot, '..', 'shared', 'fixtures', 'text', 'sst2-glue-dev.tsv');

test('score the sample decoder on labelled prompts from the Evaluate page', async ({ page }) => {
  await page.goto(serve.url);
  await page.getByTestId('evaluate-sample').click();
  await expect(page.getByTestId('eval-tokenizer-path')).toHaveValue(/tokenizer\.json$/);
  await page.getByTestId('eval-perplexity-toggle').click();

  await page.getByTestId('eval-accuracy-toggle').click();
  await expect(page.getByTestId('eval-prompt-template')).toHaveValue('{text}\nAnswer:');
  await page.getByTestId('eval-labels-path').fill(labels);
  await page.getByTestId('eval-held-out').fill('24');
  await page.getByTestId('eval-prompt-template').fill('Sentiment:');
  await page.getByTestId('eval-verbalizers').fill('0=negative, 1=positive');
  await page.getByTestId('evaluate-start').click();
  await expect(page.getByTestId('validation-issues')).toBeVisible();
  await expect(page.getByText('the prompt template needs {text}')).toBeVisible();

  await page.getByTestId('eval-prompt-template').fill('Review: {text}\nSentiment:');
  await page.getByTestId('eval-name').fill('e2e prompt accuracy');
  await page.getByTestId('evaluate-start').click();
  await expect(page.getByTestId('job-finished')).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('metric-accuracy')).toHaveText(/\d/);
  await expect(page.getByTestId('metric-macro_f1')).toHaveText(/\d/);
  await expect(page.getByTestId('metric-accuracy_examples')).toContainText('24');
  await expect(page.getByText(/answers "negative" \/ "positive"/)).toBeVisible();
  await expect(page.getByText(/model: accuracy [\d.]+ %, macro-F1 [\d.]+ over 24 examples/)).toBeVisible();
});
