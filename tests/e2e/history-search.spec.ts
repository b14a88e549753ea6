import { expect, test, type Page } from '@playwright/test';
import { startServeWithHistory, type ServeHandle } from './serve-helpers.ts';

// The history page against the real `whittle serve`: a note written on the detail page is found by
// searching one of its words (prefix, other case) in the list; tag chips, the kind filter, star and pin.
let serve: ServeHandle;
const ids: Record<string, number> = {};

test.beforeAll(async () => {
  // Finished experiments written into the served history, as the CLI beside the app would write them.
  serve = await startServeWithHistory((h) => {
    const add = (key: string, name: string, kind: string, tags: string[]) => {
      ids[key] = h.createExperiment({ name, kind, recipe: { version: 1, model: { path: '/m/stories260K.onnx' } }, modelPath: '/m/stories260K.onnx', tags });
      h.finish(ids[key], 'done');
    };
    add('gptq', 'GPTQ 4-bit g32 · stories260K', 'quantize', ['shipping']);
    add('rtn', 'RTN 8-bit · stories260K', 'quantize', ['shipping', 'baseline']);
    add('sens', 'Sensitivity of stories260K', 'sensitivity', []);
    add('eval', 'Evaluate stories260K', 'evaluate', ['baseline']);
  });
});
test.afterAll(async () => { await serve?.stop(); });

const tagChip = (page: Page, tag: string) => page.getByTestId('history-tag-filter').getByText(tag, { exact: true });
const names = async (page: Page): Promise<string[]> => page.getByTestId('history-row-name').allInnerTexts();

test("searching a note's word finds the experiment; tags, kinds, star and pin filter and order the list", async ({ page }) => {
  await page.goto(serve.url);
  await expect.poll(() => page.url()).not.toContain('token=');

  // A note written on the detail page.
  await page.goto(`${serve.origin}/#/history/${ids.sens}`);
  await page.getByTestId('detail-notes').fill('The embedding layer is the most sensitive: keep it at Zéphyrine precision.');
  await page.getByTestId('detail-notes-save').click();
  await expect(page.getByTestId('detail-notes-save')).toBeDisabled();

  await page.getByTestId('nav-history').click();
  await expect(page.getByTestId('history-row')).toHaveCount(4);
  const search = page.getByTestId('history-search');
  await search.fill('zephyr');
  await expect(page.getByTestId('history-row')).toHaveCount(1);
  await expect(page.getByTestId('history-row-name')).toHaveText('Sensitivity of stories260K');
  await search.fill('EMBEDDING sensitive');
  await expect(page.getByTestId('history-row')).toHaveCount(1);
  await search.fill('gptq 4b');
  await expect(page.getByTestId('history-row')).toHaveCount(1);
  await expect(page.getByTestId('history-row-name')).toHaveText('GPTQ 4-bit g32 · stories260K');
  await search.fill('"unbalanced -quote:*');
  await expect(page.getByTestId('history-empty')).toBeVisible();
  await search.fill('');
  await expect(page.getByTestId('history-row')).toHaveCount(4);

  // Every kind Whittle writes is offered, with its count.
  const kindOptions = await page.getByTestId('history-kind-filter').locator('option').allInnerTexts();
  for (const kind of ['evaluate', 'quantize', 'sensitivity', 'prune', 'train', 'distill']) expect(kindOptions.join('|')).toContain(kind);
  expect(kindOptions).toContain('quantize (2)');
  await page.getByTestId('history-kind-filter').selectOption('sensitivity');
  await expect(page.getByTestId('history-row')).toHaveCount(1);
  await page.getByTestId('history-kind-filter').selectOption('');

  // Tag chips: one tag, then two (both must be present).
  await tagChip(page, 'shipping').click();
  await expect(page.getByTestId('history-row')).toHaveCount(2);
  await tagChip(page, 'baseline').click();
  await expect(page.getByTestId('history-row')).toHaveCount(1);
  await expect(page.getByTestId('history-row-name')).toHaveText('RTN 8-bit · stories260K');
  await page.getByText('clear tags').click();
  await expect(page.getByTestId('history-row')).toHaveCount(4);

  // Pin the oldest: it comes first. Star one: the starred filter shows it alone.
  await page.getByTestId('history-row').filter({ hasText: 'GPTQ 4-bit' }).getByTestId('row-pin').click();
  await expect.poll(() => names(page)).toEqual(['GPTQ 4-bit g32 · stories260K', 'Evaluate stories260K', 'Sensitivity of stories260K', 'RTN 8-bit · stories260K']);
  await page.getByTestId('history-row').filter({ hasText: 'Evaluate' }).getByTestId('row-star').click();
  await expect(page.getByTestId('history-row').filter({ hasText: 'Evaluate' })).toHaveAttribute('data-starred', 'true');
  await page.getByText('Starred', { exact: true }).click();
  await expect(page.getByTestId('history-row')).toHaveCount(1);
  await expect(page.getByTestId('history-row-name')).toHaveText('Evaluate stories260K');
  await page.getByText('Starred', { exact: true }).click();

  // Ticking rows keeps a selection for actions on several experiments.
  await page.getByTestId('history-select').nth(0).check();
  await page.getByTestId('history-select').nth(2).check();
  await expect(page.getByTestId('history-selected-count')).toHaveText('2');
  await page.getByTestId('history-selection-clear').click();
  await expect(page.getByTestId('history-selection')).toHaveCount(0);

  // The filters live in the address: a reload keeps them.
  await page.getByTestId('history-search').fill('stories');
  await tagChip(page, 'baseline').click();
  await expect(page.getByTestId('history-row')).toHaveCount(2);
  await expect.poll(() => page.url()).toContain('q=stories');
  await page.reload();
  await expect(page.getByTestId('history-row')).toHaveCount(2);
  await expect(page.getByTestId('history-search')).toHaveValue('stories');

  // The History tab starts over: no search left in the box, nor put back into the address.
  await page.getByTestId('nav-history').click();
  await expect(page.getByTestId('history-search')).toHaveValue('');
  await expect(page.getByTestId('history-row')).toHaveCount(4);
  await page.waitForTimeout(600);
  expect(page.url()).not.toContain('q=');
  await expect(page.getByTestId('history-row')).toHaveCount(4);
});
