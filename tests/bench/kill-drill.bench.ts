/**
 * Drill: `kill -9` at random moments of a quantize + compare job, then what a user finds.
 *
 *   npm run bench kill-drill   (env: DRILL_KILLS=20, DRILL_SEED=1)
 *
 * Each round starts `whittle quantize` (GPTQ 4-bit with a comparison on the sample, the real CLI from the
 * sources, its engine a child process) into a fresh --out inside one shared history folder, and SIGKILLs
 * the CLI after a random delay drawn over a run's measured duration. The engine notices its parent is gone
 * and exits. Then the next start of Whittle (`whittle history list`) runs its start-up. Counted:
 *   finished-looking folders — an --out (or a job folder) holding model.onnx or whittle.json for an
 *                              experiment that is not `done`;
 *   partial folders left     — `*.partial-*` anywhere after the next start;
 *   rows                     — experiments not `done` that are not `interrupted` after the next start;
 *   integrity                — PRAGMA integrity_check of history.db after all rounds.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { mulberry32 } from '../../main/engine/calibrate/prng.ts';
import { runCli, startCli } from '../integration/cli-process.ts';

const KILLS = Number(process.env.DRILL_KILLS ?? 20);
const rng = mulberry32(Number(process.env.DRILL_SEED ?? 1));
const S = path.resolve('main/resources/sample');
const root = mkdtempSync(path.join(os.tmpdir(), 'whittle-drill-'));
const home = path.join(root, 'home');
mkdirSync(home);
const args = (out: string): string[] => [
  'quantize', path.join(S, 'stories260K-kv.onnx'), '--method', 'gptq', '--calib-text', path.join(S, 'tinystories-calibration.txt'),
  '--calib-samples', '32', '--calib-len', '128', '--eval-text', path.join(S, 'tinystories-eval.txt'), '--samples', '100',
  '--out', out, '--home', home, '--json', '-q',
];

function walk(dir: string, found: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) { found.push(p); walk(p, found); }
  }
  return found;
}

const looksFinished = (dir: string): boolean => existsSync(path.join(dir, 'model.onnx')) || existsSync(path.join(dir, 'whittle.json'));

try {
  // One undisturbed run: its duration bounds the random kill times.
  const t0 = performance.now();
  const warm = await runCli(args(path.join(root, 'out-reference')), { timeoutMs: 600_000 });
  const duration = performance.now() - t0;
  if (warm.code !== 0) throw new Error(`the reference run failed: ${warm.stderr}`);
  console.log(`reference run: ${(duration / 1000).toFixed(1)} s; ${KILLS} kills at random moments in [0.1, 1.0] of that`);

  let finishedLooking = 0, partialsLeft = 0, completed = 0, notMarked = 0;
  for (let i = 0; i < KILLS; i++) {
    const out = path.join(root, `out-${i}`);
    const child = startCli(args(out));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const delay = duration * (0.1 + 0.9 * rng.next());
    const timer = setTimeout(() => child.kill('SIGKILL'), delay);
    const code = await exited;
    clearTimeout(timer);
    if (code === 0) completed++;
    // Let the orphaned engine notice and exit, then start Whittle again.
    await new Promise((r) => setTimeout(r, 1500));
    const list = await runCli(['history', 'list', '--home', home, '--json'], { timeoutMs: 60_000 });
    const experiments = (JSON.parse(list.stdout) as { items: { id: number; status: string }[] }).items;
    const last = experiments.reduce((a, e) => (e.id > a.id ? e : a), experiments[0]);
    const done = last?.status === 'done';
    if (!done && existsSync(out) && looksFinished(out)) finishedLooking++;
    const partialNow = walk(root).filter((d) => /\.partial-/.test(path.basename(d)));
    if (partialNow.length > 0) partialsLeft++;
    if (experiments.some((e) => e.status === 'running' || e.status === 'queued')) notMarked++;
    console.log(`kill ${String(i + 1).padStart(2)} at ${(delay / 1000).toFixed(2)} s: exit ${code ?? 'SIGKILL'}, experiment ${last?.id} ${last?.status}, --out ${existsSync(out) ? (looksFinished(out) ? 'finished-looking' : 'present') : 'absent'}, partial folders ${partialNow.length}`);
  }
  const db = new Database(path.join(home, 'history.db'), { readonly: true });
  const integrity = (db.prepare('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check;
  const statuses = db.prepare('SELECT status, COUNT(*) AS n FROM experiments GROUP BY status').all() as { status: string; n: number }[];
  db.close();
  console.log(`\n${KILLS} kills (${completed} runs finished before their kill)`);
  console.log(`finished-looking folders of experiments not done: ${finishedLooking}`);
  console.log(`rounds after which a partial folder was still there after the next start: ${partialsLeft}`);
  console.log(`rounds after which a row was left queued/running after the next start: ${notMarked}`);
  console.log(`history.db integrity_check: ${integrity}; experiments by status: ${statuses.map((s) => `${s.status} ${s.n}`).join(', ')}`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
