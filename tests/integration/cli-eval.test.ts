/**
 * `whittle eval` / `run` / `history` end to end as child processes: a real evaluation of stories260K in
 * the engine process, recorded in a real history database that the history commands then read.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExperimentDetail, ExperimentSummary, Metric } from '../../preload/contract.ts';
import { once } from 'node:events';
import { appRoot } from '../../main/paths.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { onlyJson, runCli, startCli } from './cli-process.ts';

let scratch: { dir: string; cleanup: () => void };
let home: string;

beforeAll(() => {
  scratch = tempDir('whittle-cli-eval-');
  home = path.join(scratch.dir, 'home');
});
afterAll(() => scratch.cleanup());

interface EvalJson {
  experimentId: number;
  jobId: string;
  status: string;
  name: string;
  values: Record<string, Record<string, number>>;
  metrics: Metric[];
}

describe('whittle eval, run and history', () => {
  let experimentId = 0;

  it('evaluates stories260K and prints one JSON document with perplexity and the experiment id', async () => {
    const r = await runCli([
      'eval', STORIES.model, '--tokenizer', STORIES.tokenizer, '--text', STORIES.text,
      '--window', '64', '--samples', '20', '--name', 'cli smoke', '--json', '--home', home,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = onlyJson(r) as EvalJson;
    expect(doc.status).toBe('done');
    expect(doc.name).toBe('cli smoke');
    expect(Number.isInteger(doc.experimentId) && doc.experimentId > 0).toBe(true);
    const perplexity = doc.metrics.find((m) => m.name === 'perplexity');
    expect(perplexity).toBeDefined();
    // A trained model on its own kind of text: far below the uniform 512 of a vocabulary of 512.
    expect(perplexity!.value).toBeGreaterThan(1);
    expect(perplexity!.value).toBeLessThan(20);
    expect(doc.values.model.perplexity).toBe(perplexity!.value);
    experimentId = doc.experimentId;
  });

  it('lists the experiment in `history list --json` and shows its recipe verbatim', async () => {
    const list = await runCli(['history', 'list', '--json', '--home', home]);
    expect(list.code, list.stderr).toBe(0);
    const { items, total } = onlyJson(list) as { items: ExperimentSummary[]; total: number };
    expect(total).toBe(1);
    expect(items[0]).toMatchObject({ id: experimentId, name: 'cli smoke', status: 'done', modelPath: STORIES.model });

    const searched = await runCli(['history', 'list', '--search', 'no such name', '--json', '--home', home]);
    expect(onlyJson(searched)).toEqual({ items: [], total: 0 });

    const show = await runCli(['history', 'show', String(experimentId), '--json', '--home', home]);
    expect(show.code, show.stderr).toBe(0);
    const detail = onlyJson(show) as ExperimentDetail;
    expect(detail.id).toBe(experimentId);
    // Exactly what the CLI submitted: no defaults filled in, absolute paths as given.
    expect(detail.recipe).toEqual({
      version: 1,
      name: 'cli smoke',
      model: { path: STORIES.model },
      tokenizer: { path: STORIES.tokenizer },
      evaluation: { perplexity: { text: STORIES.text, window: 64, maxSamples: 20 }, footprint: true },
    });
    expect(detail.metrics.some((m) => m.name === 'perplexity')).toBe(true);

    const human = await runCli(['history', 'list', '--home', home]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^\\s*${experimentId}\\s.*done.*cli smoke`, 'm'));
  });

  it('runs a recipe file on the bundled sample, paths relative to the file, and prints a readable summary', async () => {
    // Relative paths are read against the recipe file's folder (here: up into the app's sample folder).
    const sample = path.join(appRoot(), 'main', 'resources', 'sample');
    const rel = (name: string) => path.relative(scratch.dir, path.join(sample, name));
    const recipe = {
      name: 'bundled sample',
      model: { path: rel('stories260K-kv.onnx') },
      tokenizer: { path: rel('tokenizer.json') },
      evaluation: { perplexity: { text: rel('tinystories-eval.txt') } },
    };
    const file = path.join(scratch.dir, 'recipe.json');
    writeFileSync(file, JSON.stringify(recipe, null, 2));
    const r = await runCli(['run', file, '--quiet', '--home', home]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/Experiment (\d+) · bundled sample · done/);
    expect(r.stdout).toMatch(/^perplexity\s+4\.227$/m);
    expect(r.stdout).toMatch(/^predicted tokens\s+38,675$/m);
    const id = Number(/Experiment (\d+)/.exec(r.stdout)![1]);

    const show = await runCli(['history', 'show', String(id), '--json', '--home', home]);
    const detail = onlyJson(show) as ExperimentDetail;
    // The sample text is the first 400 paragraphs: the reference figure of the fixture manifest.
    const values = Object.fromEntries(detail.metrics.map((m) => [m.name, m.value]));
    expect(values.perplexity).toBeCloseTo(4.2267, 3);
    expect(values.predicted_tokens).toBe(38_675);
    // Stored as submitted: the file's recipe with only its relative paths made absolute.
    const written = JSON.parse(readFileSync(file, 'utf8'));
    written.model.path = path.join(sample, 'stories260K-kv.onnx');
    written.tokenizer.path = path.join(sample, 'tokenizer.json');
    written.evaluation.perplexity.text = path.join(sample, 'tinystories-eval.txt');
    expect(detail.recipe).toEqual(written);
  });

  it('reads WHITTLE_HOME, and --home overrides it', async () => {
    const fromEnv = await runCli(['history', 'list', '--json'], { env: { WHITTLE_HOME: home } });
    expect((onlyJson(fromEnv) as { items: ExperimentSummary[] }).items.map((i) => i.id)).toContain(experimentId);
    const overridden = await runCli(['history', 'list', '--json', '--home', path.join(scratch.dir, 'other-home')], { env: { WHITTLE_HOME: home } });
    expect(onlyJson(overridden)).toEqual({ items: [], total: 0 });
  });

  it('deletes an experiment; a second delete or show of it is NOT_FOUND (exit 2)', async () => {
    const del = await runCli(['history', 'delete', String(experimentId), '--json', '--home', home]);
    expect(del.code, del.stderr).toBe(0);
    expect(onlyJson(del)).toEqual({ deleted: true, id: experimentId });

    const again = await runCli(['history', 'show', String(experimentId), '--json', '--home', home]);
    expect(again.code).toBe(2);
    expect((onlyJson(again) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  it('Ctrl-C cancels a running evaluation: exit 1, the experiment recorded as cancelled', async () => {
    const child = startCli([
      // Thousands of 8-token windows: several seconds of evaluation to interrupt.
      'eval', STORIES.model, '--tokenizer', STORIES.tokenizer, '--text', path.join(appRoot(), 'main', 'resources', 'sample', 'tinystories-eval.txt'),
      '--protocol', 'stream', '--window', '8', '--samples', '100000', '--name', 'to be cancelled', '--home', home,
    ]);
    let stderr = '';
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the job never reported progress:\n${stderr}`)), 60_000);
      child.stderr!.setEncoding('utf8').on('data', (t: string) => {
        stderr += t;
        // Interrupt once the engine is working on the text.
        if (/· evaluate/.test(stderr)) { clearTimeout(timer); resolve(); }
      });
    });
    child.kill('SIGINT');
    const [code] = await exited;
    expect(code, stderr).toBe(1);
    // The engine stopped when asked: it was not killed after the grace period.
    expect(stderr).not.toContain('did not stop');
    expect(stderr).toContain('cancelling the job');
    expect(stderr).toMatch(/whittle: Experiment \d+ was cancelled/);

    const list = await runCli(['history', 'list', '--search', 'to be cancelled', '--json', '--home', home]);
    const { items } = onlyJson(list) as { items: ExperimentSummary[] };
    expect(items.map((i) => i.status)).toEqual(['cancelled']);
  });

  it('a crashing engine process fails the experiment cleanly: exit 1 and the reason', async () => {
    // An engine that dies of a segmentation fault as soon as it is given the job.
    const crashing = path.join(scratch.dir, 'crashing-worker.mjs');
    writeFileSync(crashing, "process.on('message', () => process.kill(process.pid, 'SIGSEGV'));\n");
    const r = await runCli([
      'eval', STORIES.model, '--tokenizer', STORIES.tokenizer, '--text', STORIES.text, '--name', 'crashed', '--json', '--home', home,
    ], { env: { WHITTLE_ENGINE_WORKER: crashing } });
    expect(r.code).toBe(1);
    const { error } = onlyJson(r) as { error: { code: string; message: string; details: { experimentId: number; status: string } } };
    expect(error.code).toBe('INTERNAL');
    expect(error.message).toContain('The engine process stopped unexpectedly (signal SIGSEGV)');
    expect(error.details.status).toBe('failed');

    const show = await runCli(['history', 'show', String(error.details.experimentId), '--json', '--home', home]);
    expect(onlyJson(show)).toMatchObject({ name: 'crashed', status: 'failed', error: { code: 'INTERNAL' } });
  });
});

describe('whittle eval without a tokenizer or text', () => {
  it('times a model with no tokenizer.json beside it (speed and footprint only), and finds one beside it for perplexity', async () => {
    const folder = path.join(scratch.dir, 'bare-model');
    mkdirSync(folder, { recursive: true });
    const model = path.join(folder, 'model.onnx');
    copyFileSync(STORIES.model, model);
    const speed = await runCli(['eval', model, '--speed', '--prompt-tokens', '8', '--decode-tokens', '4', '--threads', '1', '--json', '--home', home]);
    expect(speed.code, speed.stderr).toBe(0);
    const names = (onlyJson(speed) as EvalJson).metrics.map((m) => m.name);
    expect(names).toContain('parameters');
    expect(names.some((n) => /decode/.test(n))).toBe(true);
    expect(names).not.toContain('perplexity');

    const refused = await runCli(['eval', model, '--text', STORIES.text, '--json', '--home', home]);
    expect(refused.code).toBe(2);
    expect(refused.stdout + refused.stderr).toMatch(/no tokenizer.json beside model.onnx/);

    copyFileSync(STORIES.tokenizer, path.join(folder, 'tokenizer.json'));
    const found = await runCli(['eval', model, '--text', STORIES.text, '--window', '64', '--samples', '8', '--json', '--home', home]);
    expect(found.code, found.stderr).toBe(0);
    expect((onlyJson(found) as EvalJson).values.model.perplexity).toBeGreaterThan(1);
  });
});
