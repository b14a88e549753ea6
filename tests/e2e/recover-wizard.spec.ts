import { expect, test, type Page } from '@playwright/test';
import path from 'node:path';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// The Recover option of the Prune wizard in Chromium against the real `whittle serve`: the bundled sample
// pruned 50 % by magnitude, then recovered for 4 steps with the original as teacher (a distill step after
// the prune step, on the sample's calibration text), to the comparison of the original with the result.
let serve: ServeHandle;
test.beforeAll(async () => { serve = await startServe(); });
test.afterAll(async () => { await serve?.stop(); });

const shots = path.join(projectRoot, 'test-results', 'screenshots');
const numberIn = async (page: Page, testId: string): Promise<number> => Number(await page.getByTestId(testId).getAttribute('data-value'));

test('prune the sample 50 % and recover it with the original as teacher', async ({ page }) => {
  await page.goto(serve.url);
  await page.getByTestId('prune-sample').click();
  await page.getByTestId('prune-samples').fill('20');
  await page.getByTestId('prune-speed-toggle').click({ force: true });
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('wizard-step-method')).toBeVisible();
  await page.getByTestId('wizard-next').click();

  // Targets: 50 % by magnitude, then Recover for 4 steps on the calibration text.
  await expect(page.getByTestId('wizard-step-targets')).toBeVisible();
  await expect(page.getByTestId('recover')).toContainText('original as its teacher');
  await page.getByTestId('recover-toggle').click({ force: true });
  await expect(page.getByTestId('recover')).toContainText('tinystories-calibration.txt');
  await page.getByTestId('recover-steps').fill('4');
  await page.getByTestId('wizard-next').click();

  // Run: the recipe has the prune step, then the distill step whose student is the pruned model.
  await expect(page.getByTestId('wizard-step-run')).toBeVisible();
  await page.getByTestId('show-recipe').click();
  const json = page.getByTestId('recipe-json');
  await expect(json).toContainText('"type": "prune"');
  await expect(json).toContainText('"type": "distill"');
  await expect(json).toContainText('"from": "input"');
  await page.getByTestId('prune-name').fill('e2e prune and recover');
  await page.getByTestId('prune-start').click();

  await expect(page.getByTestId('wizard-step-result')).toBeVisible({ timeout: 150_000 });
  expect(await numberIn(page, 'compare-original-perplexity')).toBeGreaterThan(1);
  expect(await numberIn(page, 'compare-result-perplexity')).toBeGreaterThan(1);
  // The recovery's own report below the pruning's, and the output is the recovered model's folder.
  await expect(page.getByTestId('recovery-details')).toContainText('Teacher');
  await expect(page.getByTestId('recovery-details').getByTestId('train-curves')).toHaveAttribute('data-points', '4');
  await expect(page.getByTestId('wizard-step-result')).not.toContainText('/step-1');
  await page.screenshot({ path: path.join(shots, 'prune-recover-compare.png'), fullPage: true });

  // The history keeps it as a pruning experiment whose recipe has the recovery.
  await page.getByTestId('nav-history').click();
  const row = page.getByTestId('history-row').filter({ hasText: 'e2e prune and recover' });
  await expect(row).toHaveAttribute('data-status', 'done');
  await row.getByTestId('history-row-name').click();
  await expect(page.getByTestId('history-detail')).toContainText('distill');
});
