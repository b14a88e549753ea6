import { expect, test, type Page } from '@playwright/test';
import path from 'node:path';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// The Distill wizard in Chromium against the real `whittle serve`: a student of the bundled sample's
// blocks 0, 2, 4 (every other block), its size shown before running, the overlap check of the texts,
// the loss settings with their explanations, 4 steps of B = 2, T = 32 with the live loss, KL/CE and
// agreement curves, then the teacher compared with the student and the run kept in the history.
let serve: ServeHandle;
test.beforeAll(async () => { serve = await startServe(); });
test.afterAll(async () => { await serve?.stop(); });

const shots = path.join(projectRoot, 'test-results', 'screenshots');
const numberIn = async (page: Page, testId: string): Promise<number> => Number(await page.getByTestId(testId).getAttribute('data-value'));

test('distil a 3-block student from the bundled sample, watch its curves, and compare it with the teacher', async ({ page }) => {
  await page.goto(serve.url);
  await page.getByTestId('distill-sample').click();

  // 1. Teacher: prefilled for the sample; a few documents for the comparison.
  await expect(page.getByTestId('wizard-step-model')).toBeVisible();
  await expect(page.getByTestId('nav-distill')).toHaveAttribute('aria-current', 'page');
  await expect(page.getByTestId('distill-model-path')).toHaveValue(/stories260K-kv\.onnx$/);
  await page.getByTestId('distill-window').fill('64');
  await page.getByTestId('distill-samples').fill('20');
  await page.getByTestId('wizard-next').click();

  // 2. Student: no block picked is refused; every other block of 5 is 0, 2, 4, sized before running.
  await expect(page.getByTestId('wizard-step-student')).toBeVisible();
  await expect(page.getByTestId('distill-card')).toContainText('Distill — a student learns from a teacher');
  await expect(page.getByTestId('distill-block-4')).toHaveCount(1);
  await expect(page.getByTestId('distill-block-5')).toHaveCount(0);
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('distill-blocks-error')).toContainText("Pick the teacher's blocks");
  await page.getByTestId('distill-every-other').click();
  await expect(page.getByTestId('distill-student-size')).toContainText('0, 2, 4');
  await expect(page.getByTestId('distill-student-params')).toContainText(' of ');
  await page.screenshot({ path: path.join(shots, 'distill-student.png'), fullPage: true });
  await page.getByTestId('wizard-next').click();

  // 3. Data: the sample's calibration text does not overlap its evaluation text; choosing the evaluation
  // text itself is warned about before running.
  await expect(page.getByTestId('wizard-step-data')).toBeVisible();
  const trainText = await page.getByTestId('distill-text-path').inputValue();
  expect(trainText).toMatch(/tinystories-calibration\.txt$/);
  await expect(page.getByTestId('distill-overlap-ok')).toBeVisible();
  await page.getByTestId('distill-text-path').fill(trainText.replace('tinystories-calibration.txt', 'tinystories-eval.txt'));
  await expect(page.getByTestId('distill-overlap-warning')).toContainText('is the training text');
  await page.getByTestId('distill-text-path').fill(trainText);
  await expect(page.getByTestId('distill-overlap-ok')).toBeVisible();
  await page.getByTestId('distill-eval-every').fill('2');
  await page.getByTestId('wizard-next').click();

  // 4. Loss and schedule: T, α and reverse KL explained; α above 1 refused on its field; 4 steps of B 2 × T 32.
  await expect(page.getByTestId('wizard-step-settings')).toBeVisible();
  await expect(page.getByTestId('wizard-step-settings')).toContainText('softens both distributions');
  await expect(page.getByTestId('wizard-step-settings')).toContainText("1 − α weighs predicting the text's own next tokens");
  await expect(page.getByTestId('wizard-step-settings')).toContainText('Reverse KL (student ‖ teacher)');
  await page.getByTestId('distill-alpha').fill('1.5');
  await page.getByTestId('distill-steps').fill('4');
  await page.getByTestId('distill-batch').fill('2');
  await page.getByTestId('distill-length').fill('32');
  await page.getByTestId('distill-lr').fill('0.001');
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('wizard-step-settings')).toContainText('weight from 0 to 1');
  await page.getByTestId('distill-alpha').fill('0.5');
  await page.getByTestId('wizard-next').click();

  // 5. Run: the recipe, then the live curves with the distillation's parts.
  await expect(page.getByTestId('wizard-step-run')).toBeVisible();
  await expect(page.getByTestId('distill-review')).toContainText('blocks 0, 2, 4 of the teacher');
  await expect(page.getByTestId('distill-review')).toContainText('4 steps · B 2 × T 32');
  await page.getByTestId('show-recipe').click();
  await expect(page.getByTestId('recipe-json')).toContainText('"type": "distill"');
  await page.getByTestId('distill-name').fill('e2e distill 4 steps');
  await page.getByTestId('distill-start').click();

  const curves = page.getByTestId('train-curves');
  await expect(curves).toBeVisible();
  await expect(page.getByTestId('train-step')).toHaveText('step 4 / 4', { timeout: 120_000 });
  await expect(curves).toHaveAttribute('data-points', '4');
  await expect(page.getByTestId('train-parts-chart')).toBeVisible();
  await expect(page.getByTestId('train-agreement-chart')).toBeVisible();
  await expect(page.getByTestId('train-parts-chart').locator('path.recharts-curve').first()).toBeVisible();
  await expect(page.getByTestId('train-agreement')).toContainText('%');
  await page.screenshot({ path: path.join(shots, 'distill-run.png'), fullPage: true });

  // 6. Result: teacher (the original) beside the student on the evaluation text, and the distillation's facts.
  await expect(page.getByTestId('wizard-step-result')).toBeVisible({ timeout: 120_000 });
  expect(await numberIn(page, 'compare-original-perplexity')).toBeGreaterThan(1);
  expect(await numberIn(page, 'compare-result-perplexity')).toBeGreaterThan(1);
  await expect(page.getByTestId('method-details')).toHaveAttribute('data-method', 'distill');
  await expect(page.getByTestId('distill-details')).toContainText('3 blocks (0, 2, 4)');
  await expect(page.getByTestId('distill-agreement')).toContainText('→');
  await page.screenshot({ path: path.join(shots, 'distill-compare.png'), fullPage: true });

  // The history lists it as a distill experiment; the wizard reopens pre-filled.
  await page.getByTestId('nav-history').click();
  const row = page.getByTestId('history-row').filter({ hasText: 'e2e distill 4 steps' });
  await expect(row).toHaveAttribute('data-status', 'done');
  await row.getByTestId('history-row-name').click();
  await expect(page.getByTestId('history-detail')).toContainText('distill');
  await page.getByTestId('detail-compare').click();
  await expect(page.getByTestId('wizard-step-result')).toBeVisible();
  await page.getByTestId('quantize-again').click();
  await expect(page.getByTestId('wizard-step-student')).toBeVisible();
  await expect(page.getByTestId('distill-student-size')).toContainText('0, 2, 4');
});
