/**
 * `whittle eval` / `run` / `history` end to end as child processes: a real evaluation of stories260K in
 * the engine process, recorded in a real history database that the history commands then read.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExperimentDetail, ExperimentSummary, Metric } from '../../preload/contract.ts';
import { once } from 'node:events';
import { STORIES, fixture, tempDir } from '../helpers/fixtures.ts';
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

  it('runs a recipe file, storing it verbatim, and prints a readable summary', async () => {
    const recipe = {
      name: 'from a recipe file',
      model: { path: STORIES.model },
      tokenizer: { path: STORIES.tokenizer },
      evaluation: { perplexity: { text: STORIES.text, protocol: 'stream', window: 32, maxSamples: 4 }, footprint: true },
    };
    const file = path.join(scratch.dir, 'recipe.json');
    writeFileSync(file, JSON.stringify(recipe, null, 2));
    const r = await runCli(['run', file, '--home', home]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Experiment (\d+) · from a recipe file · done/);
    expect(r.stdout).toMatch(/perplexity\s+\d/);
    const id = Number(/Experiment (\d+)/.exec(r.stdout)![1]);

    const show = await runCli(['history', 'show', String(id), '--json', '--home', home]);
    expect((onlyJson(show) as ExperimentDetail).recipe).toEqual(JSON.parse(readFileSync(file, 'utf8')));
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
      'eval', STORIES.model, '--tokenizer', STORIES.tokenizer, '--text', fixture('text', 'moby-dick.txt'),
      '--protocol', 'stream', '--window', '64', '--samples', '100000', '--name', 'to be cancelled', '--home', home,
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
    expect(stderr).toContain('cancelling the job');
    expect(stderr).toMatch(/whittle: Experiment \d+ was cancelled/);

    const list = await runCli(['history', 'list', '--search', 'to be cancelled', '--json', '--home', home]);
    const { items } = onlyJson(list) as { items: ExperimentSummary[] };
    expect(items.map((i) => i.status)).toEqual(['cancelled']);
  });
});
