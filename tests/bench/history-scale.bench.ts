/**
 * The history at scale: homes of 1,000 and 10,000 realistic experiments (helpers/history-home.ts), and
 * the server-side latency of one page (25 rows) of the list, filtered (kind, status, tag, starred) and
 * searched (FTS5), p50 / p99 over repeats. Two layers are timed: the repository alone (History.list), and
 * the whole call as the app answers it (schema check, router, services, reply copied as over a wire),
 * through the in-memory transport. The query plans of the slowest kinds of query are printed.
 *
 * The renderer's time to first paint of the history page at 10,000: with `--paint` (needs `npm run -s
 * build` and a Chromium, as the e2e tests do), `whittle serve` on the 10,000 home and Chromium via
 * Playwright; the time from navigation to the first row painted, and to the first contentful paint.
 *   npm run bench history-scale            (server side)
 *   node scripts/with-node.mjs tests/bench/history-scale.bench.ts --paint        (both)
 *   node scripts/with-node.mjs tests/bench/history-scale.bench.ts --paint-only   (the renderer alone)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createWhittleApp } from '../../main/app.ts';
import { createMemoryClient } from '../../main/api/memory-transport.ts';
import type { CallParams } from '../../preload/contract.ts';
import { appRoot } from '../../main/paths.ts';
import { fillHistory, type FilledHome } from './helpers/history-home.ts';

/** `--paint-only`: the renderer's figures alone (the 10,000 home, no server-side timing). */
const paintOnly = process.argv.includes('--paint-only');
const paint = paintOnly || process.argv.includes('--paint');
const SIZES = paintOnly ? [10_000] : [1_000, 10_000];
const PAGE = 25;

interface Stat { p50: number; p99: number; max: number }

function stats(samples: number[]): Stat {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] };
}

async function time(repeats: number, fn: () => unknown): Promise<Stat> {
  for (let i = 0; i < 5; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return stats(samples);
}

function queries(f: FilledHome): [string, CallParams<'history.list'>][] {
  return [
    ['list, newest first', {}],
    ['list, page 100 (offset 2,475)', { offset: 2475 }],
    ['list, sorted by name', { sort: 'name', order: 'asc' }],
    ['filter kind = quantize', { kind: 'quantize' }],
    ['filter kind = distill', { kind: 'distill' }],
    ['filter status = failed', { status: 'failed' }],
    [`filter tag = ${f.commonTag}`, { tags: [f.commonTag] }],
    [`filter tag = ${f.rareTag}`, { tags: [f.rareTag] }],
    ['filter tags = 2 tags (all)', { tags: [f.commonTag, 'baseline'] }],
    ['filter starred', { starred: true }],
    ['filter kind + status + tag', { kind: 'quantize', status: 'done', tags: [f.commonTag] }],
    ['search "g" (1 letter, typing)', { search: 'g', sort: 'relevance' }],
    ['search "gptq 4b"', { search: 'gptq 4b', sort: 'relevance' }],
    ['search "calibration" (notes)', { search: 'calibration', sort: 'relevance' }],
    [`search "${f.rareWord}" (rare word)`, { search: f.rareWord, sort: 'relevance' }],
    ['search "stories15m" (model)', { search: 'stories15m', sort: 'relevance' }],
    ['search "260K" (inside a model name)', { search: '260K', sort: 'relevance' }],
    ['search "user" (inside every path)', { search: 'user', sort: 'relevance' }],
    ['search "gptq 260K" + sort by name', { search: 'gptq 260K', sort: 'name', order: 'asc' }],
    ['search "shipping" (tag word)', { search: f.commonTag, sort: 'relevance' }],
    ['search + kind + sort by name', { search: 'perplexity rose', kind: 'quantize', sort: 'name', order: 'asc' }],
    ['search, page 20', { search: 'model', sort: 'relevance', offset: 475 }],
    ['search punctuation only "%"', { search: '%' }],
  ];
}

function row(name: string, a: Stat, b: Stat, total: number): string {
  const f = (x: number) => x.toFixed(2).padStart(7);
  return `${name.padEnd(34)} ${String(total).padStart(6)} ${f(a.p50)} ${f(a.p99)} ${f(b.p50)} ${f(b.p99)}`;
}

async function benchSize(count: number): Promise<string | null> {
  const home = mkdtempSync(path.join(os.tmpdir(), `whittle-history-${count}-`));
  let keep: string | null = null;
  try {
    const filled = fillHistory(home, count, 7);
    if (paintOnly) {
      keep = home;
      return keep;
    }
    const repeats = count > 5000 ? 100 : 200;
    console.log(`\n${count.toLocaleString('en')} experiments (written in ${filled.seconds.toFixed(1)} s); one page = ${PAGE} rows; ${repeats} repeats; ms`);
    console.log(`${''.padEnd(34)} ${'total'.padStart(6)} ${'repo'.padStart(7)} ${''.padStart(7)} ${'call'.padStart(7)} ${''.padStart(7)}`);
    console.log(`${'query'.padEnd(34)} ${'rows'.padStart(6)} ${'p50'.padStart(7)} ${'p99'.padStart(7)} ${'p50'.padStart(7)} ${'p99'.padStart(7)}`);

    const app = createWhittleApp({ home, transport: 'memory', workerPath: path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts') });
    const client = createMemoryClient(app.router, app.events);
    try {
      let worst = 0;
      for (const [name, q] of queries(filled)) {
        const query = { limit: PAGE, ...q };
        const total = app.history.list(query).total;
        const repo = await time(repeats, () => app.history.list(query));
        const call = await time(repeats, () => client.call('history.list', query));
        worst = Math.max(worst, call.p99);
        console.log(row(name, repo, call, total));
      }
      const kinds = await time(repeats, () => client.call('history.kinds', {}));
      const tags = await time(repeats, () => client.call('history.tags', {}));
      console.log(row('history.kinds', kinds, kinds, app.history.kinds().length));
      console.log(row('history.tags', tags, tags, app.history.tags().length));
      console.log(`slowest call p99: ${worst.toFixed(2)} ms (budget 50 ms)`);

      if (count === SIZES[SIZES.length - 1]) {
        const h = app.history;
        const plan = (sql: string, ...params: unknown[]) => h.db.prepare<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`).all(...params).map((r) => r.detail).join(' | ');
        console.log('\nquery plans at 10,000:');
        console.log(`  list:        ${plan('SELECT e.id FROM experiments e ORDER BY e.pinned DESC, e.created DESC, e.id DESC LIMIT 25')}`);
        console.log(`  kind:        ${plan('SELECT e.id FROM experiments e WHERE e.kind = ? ORDER BY e.pinned DESC, e.created DESC, e.id DESC LIMIT 25', 'quantize')}`);
        console.log(`  tag:         ${plan('SELECT e.id FROM experiments e WHERE e.id IN (SELECT experiment FROM tags WHERE tag = ?) ORDER BY e.pinned DESC, e.created DESC, e.id DESC LIMIT 25', 'x')}`);
        console.log(`  search:      ${plan("SELECT rowid FROM experiments_fts WHERE experiments_fts MATCH ? ORDER BY rowid IN (SELECT value FROM json_each('[]')) DESC, bm25(experiments_fts) LIMIT 25", '"g"*')}`);
      }
    } finally {
      client.close();
      await app.close();
    }
    if (paint && count === SIZES[SIZES.length - 1]) keep = home;
    return keep;
  } finally {
    if (!keep) rmSync(home, { recursive: true, force: true });
  }
}

/** `whittle serve` on `home`, Chromium on its history page: ms to the first row painted. */
async function firstPaint(home: string): Promise<void> {
  const { chromium } = await import('@playwright/test');
  const { findChromium } = await import('../../scripts/chromium.mjs') as { findChromium: () => { executablePath: string; env?: Record<string, string> } | null };
  const chromiumArgs = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'];
  const browserInfo = findChromium();
  if (!browserInfo) throw new Error('No Chromium: run `npm install` or set WHITTLE_CHROMIUM.');
  const child = spawn(process.execPath, [path.join(appRoot(), 'out', 'cli.cjs'), 'serve', '--port', '0', '--home', home], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not print its URL:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = output.match(/http:\/\/127\.0\.0\.1:\d+\/#token=[\w-]+/);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited (${code}):\n${output}`)); });
  });
  const parsed = new URL(url);
  const token = parsed.hash.replace('#token=', '');
  const browser = await chromium.launch({ executablePath: browserInfo.executablePath, args: chromiumArgs, ...(browserInfo.env ? { env: { ...process.env, ...browserInfo.env } } : {}) });
  try {
    const firstRow: number[] = [];
    const fcp: number[] = [];
    const searched: number[] = [];
    // In the page, from its first script: the time the first history row is in the DOM, one frame later
    // (painted). Page code is passed as text: this file is type-checked without the DOM library.
    const firstRowProbe = `window.__firstRow = new Promise((resolve) => {
      const seen = () => document.querySelector('[data-testid="history-row"]') !== null;
      const settle = () => requestAnimationFrame(() => resolve(performance.now()));
      document.addEventListener('DOMContentLoaded', () => {
        if (seen()) return settle();
        const observer = new MutationObserver(() => { if (seen()) { observer.disconnect(); settle(); } });
        observer.observe(document.body, { childList: true, subtree: true });
      });
    });`;
    // In the page: from the search box's input event to the frame after every row shown is a match
    // (the rows before the search stay until the answer arrives).
    const searchProbe = `window.__searched = new Promise((resolve) => {
      const input = document.querySelector('[data-testid="history-search"]');
      input.addEventListener('input', () => {
        const typed = performance.now();
        const done = () => {
          const rows = [...document.querySelectorAll('[data-testid="history-row-name"]')];
          return rows.length > 0 && rows.every((r) => /GPTQ 4-bit/.test(r.textContent || ''));
        };
        const observer = new MutationObserver(() => {
          if (done()) { observer.disconnect(); requestAnimationFrame(() => resolve(performance.now() - typed)); }
        });
        observer.observe(document.body, { childList: true, subtree: true, characterData: true });
      }, { once: true });
    }); true`;
    for (let i = 0; i < 6; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
      await context.addInitScript(firstRowProbe);
      const page = await context.newPage();
      await page.goto(`${parsed.origin}/#/history?token=${token}`);
      const painted = await page.evaluate('window.__firstRow') as number;
      const times = await page.evaluate(`(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const contentful = performance.getEntriesByName('first-contentful-paint')[0];
        return { start: nav ? nav.startTime : 0, fcp: contentful ? contentful.startTime : NaN };
      })()`) as { start: number; fcp: number };
      await page.evaluate(searchProbe);
      await page.getByTestId('history-search').fill('gptq 4b');
      const searchedMs = await page.evaluate('window.__searched') as number;
      if (i > 0) {
        firstRow.push(painted - times.start);
        if (Number.isFinite(times.fcp)) fcp.push(times.fcp - times.start);
        searched.push(searchedMs);
      }
      await context.close();
    }
    const s = stats(firstRow);
    const c = stats(fcp);
    const q = stats(searched);
    console.log(`\nrenderer at 10,000 (serve mode, Chromium, first load discarded, ${firstRow.length} loads):`);
    if (fcp.length) console.log(`  first contentful paint        p50 ${c.p50.toFixed(0)} ms, max ${c.max.toFixed(0)} ms (${fcp.length} loads reported one)`);
    console.log(`  first history row painted     p50 ${s.p50.toFixed(0)} ms, max ${s.max.toFixed(0)} ms`);
    console.log(`  typed search → rows shown     p50 ${q.p50.toFixed(0)} ms, max ${q.max.toFixed(0)} ms (includes the 250 ms debounce)`);
  } finally {
    await browser.close();
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

let paintHome: string | null = null;
try {
  for (const count of SIZES) paintHome = (await benchSize(count)) ?? paintHome;
  if (paintHome) await firstPaint(paintHome);
} finally {
  if (paintHome) rmSync(paintHome, { recursive: true, force: true });
}
