import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { startServeWithHistory, type ServeHandle } from './serve-helpers.ts';

// Bundles and marks from the app against the real `whittle serve`: two ticked experiments exported as a
// bundle (written inside the history folder, downloadable as a zip), imported back from the history page
// (notes and tags come along), a file outside the server's folders and a damaged one refused without
// changing the list; star and pin from the experiment page.
let serve: ServeHandle;
const ids: Record<string, number> = {};

test.beforeAll(async () => {
  serve = await startServeWithHistory((h) => {
    const add = (key: string, name: string, kind: string, tags: string[], notes: string) => {
      ids[key] = h.createExperiment({ name, kind, recipe: { version: 1, model: { path: '/m/stories260K.onnx' } }, modelPath: '/m/stories260K.onnx', tags, notes });
      h.addMetrics(ids[key], [{ name: 'perplexity', value: 4.5, unit: '', subject: 'result' }]);
      h.finish(ids[key], 'done');
    };
    add('gptq', 'GPTQ 4-bit g32 · stories260K', 'quantize', ['shipping'], 'clipped outliers before packing');
    add('rtn', 'RTN 8-bit · stories260K', 'quantize', ['baseline'], '');
    add('eval', 'Evaluate stories260K', 'evaluate', [], '');
  });
});
test.afterAll(async () => { await serve?.stop(); });

const rows = (page: Page) => page.getByTestId('history-row');
const row = (page: Page, name: string) => rows(page).filter({ hasText: name });
const lastToast = (page: Page) => page.getByTestId('toast').last();

test('export ticked experiments as a bundle, download it, import it back; refusals change nothing', async ({ page }) => {
  await page.goto(serve.url);
  await expect.poll(() => page.url()).not.toContain('token=');
  await page.goto(`${serve.origin}/#/history`);
  await expect(rows(page)).toHaveCount(3);

  // Tick two and export them: the path is proposed inside the history folder.
  await row(page, 'GPTQ 4-bit').getByTestId('history-select').check();
  await row(page, 'RTN 8-bit').getByTestId('history-select').check();
  await page.getByTestId('history-selection').getByTestId('bundle-export').click();
  const proposed = await page.getByTestId('bundle-export-path').inputValue();
  expect(proposed.startsWith(path.join(serve.home, 'bundles'))).toBe(true);
  expect(proposed.endsWith('.whittle')).toBe(true);
  await page.getByTestId('bundle-export-write').click();
  await expect(page.getByTestId('bundle-export-done')).toContainText('Wrote 2 experiments');
  const written = await page.getByTestId('bundle-export-written').innerText();
  expect(written).toBe(proposed);
  expect(existsSync(written)).toBe(true);

  // In serve mode the bundle downloads (a zip holding it, byte for byte).
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('bundle-export-download').click()]);
  const zip = path.join(serve.home, 'downloaded.zip');
  await download.saveAs(zip);
  const inside = execFileSync('unzip', ['-p', zip, path.basename(written)]);
  expect(inside.equals(readFileSync(written))).toBe(true);
  await page.getByTestId('bundle-export-close').click();

  // Import it back from the history page: two more experiments, notes and tags with them.
  await page.getByTestId('bundle-import').click();
  await page.getByTestId('bundle-import-path').fill(written);
  await page.getByTestId('bundle-import-read').click();
  await expect(lastToast(page)).toContainText('2 experiments added');
  await expect(rows(page)).toHaveCount(5);
  await expect(row(page, 'GPTQ 4-bit')).toHaveCount(2);
  await page.getByTestId('history-search').fill('outliers');
  await expect(rows(page)).toHaveCount(2);
  await page.getByTestId('history-search').fill('');
  await expect(rows(page)).toHaveCount(5);

  // A file outside the folders the server may use, and a damaged bundle: refused, nothing added.
  await page.getByTestId('bundle-import').click();
  await page.getByTestId('bundle-import-path').fill('/etc/hostname');
  await page.getByTestId('bundle-import-read').click();
  await expect(lastToast(page)).toContainText('outside the folders this server may use');
  const damaged = path.join(serve.home, 'damaged.whittle');
  writeFileSync(damaged, readFileSync(written).subarray(0, 700));
  await page.getByTestId('bundle-import-path').fill(damaged);
  await page.getByTestId('bundle-import-read').click();
  await expect(lastToast(page)).toContainText('cannot be imported');
  await page.keyboard.press('Escape');
  await expect(rows(page)).toHaveCount(5);
});

test('star and pin from the experiment page; export one experiment from there', async ({ page }) => {
  await page.goto(serve.url);
  await expect.poll(() => page.url()).not.toContain('token=');
  await page.goto(`${serve.origin}/#/history/${ids.eval}`);
  const star = page.getByTestId('detail-star');
  const pin = page.getByTestId('detail-pin');
  await expect(star).toHaveAttribute('aria-pressed', 'false');
  await star.click();
  await expect(star).toHaveAttribute('aria-pressed', 'true');
  await pin.click();
  await expect(pin).toHaveAttribute('aria-pressed', 'true');

  await page.getByTestId('detail-export-bundle').click();
  await page.getByTestId('bundle-export-write').click();
  await expect(page.getByTestId('bundle-export-done')).toContainText('Wrote 1 experiment ');
  await page.getByTestId('bundle-export-close').click();

  // The list shows it starred and first (pinned); unstarring on the page is seen there too.
  await page.goto(`${serve.origin}/#/history`);
  await expect(rows(page).first()).toContainText('Evaluate stories260K');
  await expect(rows(page).first()).toHaveAttribute('data-starred', 'true');
  await expect(rows(page).first()).toHaveAttribute('data-pinned', 'true');
  await page.goto(`${serve.origin}/#/history/${ids.eval}`);
  await star.click();
  await expect(star).toHaveAttribute('aria-pressed', 'false');
  await page.goto(`${serve.origin}/#/history`);
  await expect(row(page, 'Evaluate stories260K').first()).toHaveAttribute('data-starred', 'false');
});
