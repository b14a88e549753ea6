import { defineConfig } from '@playwright/test';
import { describeChromium, findChromium } from '../../scripts/chromium.mjs';

// End-to-end tests drive a local Chromium against serve mode: WHITTLE_CHROMIUM, a system Chromium/Chrome,
// Playwright's own browser, or the headless Chromium `npm install` extracted into .tools/chromium/
// (scripts/chromium.mjs says which, and why).
export const chromiumArgs = [
  '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

const browser = findChromium();
if (!browser) {
  throw new Error('No Chromium for the end-to-end tests: run `npm install` (it extracts one on Linux x64), '
    + '`npx playwright install chromium`, or set WHITTLE_CHROMIUM to a Chromium or Chrome executable.');
}
if (!process.env.WHITTLE_CHROMIUM_ANNOUNCED) console.log(`End-to-end tests use ${describeChromium(browser)}`);

export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.ts',
  timeout: 180_000,
  expect: { timeout: 60_000 },
  workers: 1,
  retries: 0,
  outputDir: '../../test-results/e2e-artifacts',
  reporter: [['list'], ['json']],
  use: {
    browserName: 'chromium',
    launchOptions: {
      executablePath: browser.executablePath,
      args: chromiumArgs,
      ...(browser.env ? { env: { ...process.env, ...browser.env } } : {}),
    },
    viewport: { width: 1280, height: 860 },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
});
