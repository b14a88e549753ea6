import { expect, test, type Page } from '@playwright/test';
import path from 'node:path';
import { projectRoot, startServe, type ServeHandle } from './serve-helpers.ts';

// The Distill wizard in Chromium against the real `whittle serve`: a student of the bundled sample's
// blocks 0, 2, 4 (every other block), its size shown before running, the overlap check of the texts,
// the loss settings with their explanations (hidden-state matching with its block mapping, LoRA rank, α
// and roles), 4 steps of B = 2, T = 32 with the live loss, KL/CE and agreement curves, then the teacher
// compared with the student and the run kept in the history.
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
  // Hidden-state matching: β with its explanation, and which teacher block each student block matches.
  await expect(page.getByTestId('wizard-step-settings')).toContainText("pulling each student block's output towards its teacher block's");
  await expect(page.getByTestId('distill-hidden-mapping')).toHaveCount(0);
  await page.getByTestId('distill-hidden-weight').fill('0.5');
  await expect(page.getByTestId('distill-hidden-mapping')).toContainText('student 0 ← teacher 0 · 1 ← 2 · 2 ← 4');
  // LoRA: α and the roles appear with a rank; no role at all is refused on its field.
  await expect(page.getByTestId('distill-lora-alpha')).toHaveCount(0);
  await page.getByTestId('distill-lora-rank').fill('4');
  await expect(page.getByTestId('wizard-step-settings')).toContainText('scales the adapters\' update by α / rank');
  await expect(page.getByTestId('distill-lora-alpha')).toHaveValue('16');
  const role = (name: string) => page.getByTestId('distill-lora-roles').getByText(name, { exact: true });
  for (const r of ['q', 'k', 'v', 'o']) await role(r).click();
  await page.getByTestId('wizard-next').click();
  await expect(page.getByTestId('distill-lora-roles-error')).toContainText('at least one projection');
  for (const r of ['q', 'v']) await role(r).click();
  await expect(page.getByTestId('distill-lora-role-v')).toBeChecked();
  await page.getByTestId('distill-lora-alpha').fill('8');
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
  await expect(page.getByTestId('distill-review')).toContainText('hidden-state MSE β 0.5');
  await expect(page.getByTestId('distill-review')).toContainText('LoRA rank 4, α 8 on q, v');
  await page.getByTestId('show-recipe').click();
  await expect(page.getByTestId('recipe-json')).toContainText('"type": "distill"');
  const recipe = JSON.parse(await page.getByTestId('recipe-json').innerText()) as { steps: { loss: { hidden: number }; lora: unknown }[] };
  expect(recipe.steps[0].loss.hidden).toBe(0.5);
  expect(recipe.steps[0].lora).toEqual({ rank: 4, alpha: 8, roles: ['q', 'v'] });
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
