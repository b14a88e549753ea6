// `npm test`: unit + integration tests (vitest), then end-to-end tests in Chromium (Playwright against
// serve mode, plus the real-Electron test that skips without a runtime). Ends with one plain line
// `N passed, N failed, N skipped` and exits non-zero when anything failed.
//   --only vitest|e2e   run one half;  other arguments are passed to vitest as filters.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describeChromium, ensureChromium } from './chromium.mjs';
import { projectRoot } from './node-runtime.mjs';

const args = process.argv.slice(2);
const onlyIndex = args.indexOf('--only');
const only = onlyIndex >= 0 ? args[onlyIndex + 1] : null;
const filters = args.filter((a, i) => i !== onlyIndex && i !== onlyIndex + 1);
const resultsDir = path.join(projectRoot, 'test-results');
mkdirSync(resultsDir, { recursive: true });

const totals = { passed: 0, failed: 0, skipped: 0 };
const node = process.execPath;

function run(label, cmd, cmdArgs, env = {}) {
  console.log(`\n── ${label} ──`);
  const r = spawnSync(cmd, cmdArgs, { stdio: 'inherit', cwd: projectRoot, env: { ...process.env, ...env } });
  return r.status ?? 1;
}

function readJson(file) {
  try { return JSON.parse(readFileSync(file, 'utf8')); } catch { return null; }
}

const build = run('build', node, [path.join(projectRoot, 'scripts', 'build.mjs'), '--if-stale']);
if (build !== 0) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}

if (only === null || only === 'vitest') {
  const report = path.join(resultsDir, 'vitest.json');
  rmSync(report, { force: true });
  const status = run('unit and integration tests (vitest)', node, [
    path.join(projectRoot, 'node_modules', 'vitest', 'vitest.mjs'), 'run',
    '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...filters,
  ]);
  const json = readJson(report);
  if (json) {
    totals.passed += json.numPassedTests;
    totals.failed += json.numFailedTests + (json.numTotalTestSuites > 0 && !json.success && json.numFailedTests === 0 ? 1 : 0);
    totals.skipped += json.numPendingTests + json.numTodoTests;
  } else if (status !== 0) {
    totals.failed += 1;
  }
}

if (only === null || only === 'e2e') {
  const report = path.join(resultsDir, 'e2e.json');
  rmSync(report, { force: true });
  let browser = null;
  try {
    browser = await ensureChromium();
  } catch (error) {
    console.log(`whittle: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (browser) console.log(`\nEnd-to-end tests use ${describeChromium(browser)}`);
  const status = !browser ? 1 : run('end-to-end tests (Playwright, Chromium)', node, [
    path.join(projectRoot, 'node_modules', '@playwright', 'test', 'cli.js'), 'test',
    '--config', path.join(projectRoot, 'tests', 'e2e', 'playwright.config.ts'),
  ], { PLAYWRIGHT_JSON_OUTPUT_NAME: report, WHITTLE_CHROMIUM: browser.executablePath, WHITTLE_CHROMIUM_ANNOUNCED: '1' });
  const json = readJson(report);
  if (json?.stats) {
    totals.passed += json.stats.expected + json.stats.flaky;
    totals.failed += json.stats.unexpected;
    totals.skipped += json.stats.skipped;
    if (status !== 0 && json.stats.unexpected === 0) totals.failed += 1;
  } else if (status !== 0) {
    totals.failed += 1;
  }
}

console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed > 0 ? 1 : 0);
