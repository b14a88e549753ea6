/**
 * Lineage through the real job service: a magnitude prune of the sample, then an RTN quantization of the
 * pruned output (by its .onnx file, and by its folder). The quantization points at the prune; the tree
 * reads original → prune → quantize with each step's headline metrics.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LineageNode, RecipeInput } from '../../preload/contract.ts';
import { openHistory, type History } from '../../main/history/index.ts';
import { renderReport, reportData } from '../../main/history/report/index.ts';
import { ChildProcessHost, JobService } from '../../main/jobs/index.ts';
import { appRoot } from '../../main/paths.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');
const evaluation = { perplexity: { text: STORIES.text, window: 64, maxSamples: 8 } };

let scratch: ReturnType<typeof tempDir>;
let history: History;
let jobs: JobService;

beforeAll(() => {
  scratch = tempDir('whittle-lineage-');
  history = openHistory({ home: scratch.dir });
  jobs = new JobService({ history, host: new ChildProcessHost(WORKER), outputRoot: path.join(scratch.dir, 'outputs'), emit: () => {} });
});

afterAll(async () => {
  await jobs.shutdown();
  history.close();
  scratch.cleanup();
});

async function run(recipe: RecipeInput): Promise<number> {
  const { jobId, experimentId } = await jobs.start(recipe);
  const finished = await jobs.whenFinished(jobId);
  expect(finished.status, JSON.stringify(finished.error)).toBe('done');
  return experimentId;
}

function modelArtefact(id: number): string {
  const a = history.get(id).artefacts.find((x) => x.kind === 'model');
  expect(a, `experiment ${id} wrote a model`).toBeDefined();
  return a!.path;
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

function shape(node: LineageNode): unknown {
  return { id: node.id, kind: node.kind, children: node.children.map(shape) };
}

describe('lineage', () => {
  let evaluated: number;
  let pruned: number;
  let quantized: number;
  let fromFolder: number;

  it('records what each job wrote and what it read', async () => {
    evaluated = await run({ name: 'original', model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer }, evaluation });
    pruned = await run({
      name: 'pruned', model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer }, evaluation,
      steps: [{ type: 'prune', method: 'magnitude', sparsity: 0.3 }],
    });
    const prunedModel = modelArtefact(pruned);
    quantized = await run({
      name: 'pruned then quantized', model: { path: prunedModel }, tokenizer: { path: STORIES.tokenizer }, evaluation,
      steps: [{ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }],
    });
    // The output folder stands for the model in it.
    fromFolder = await run({
      name: 'pruned then quantized (folder)', model: { path: path.dirname(prunedModel) }, tokenizer: { path: STORIES.tokenizer }, evaluation,
      steps: [{ type: 'quantize', method: 'rtn', bits: 8, blockSize: 32 }],
    });

    const row = (id: number) => history.db.prepare<{ output_sha256: string | null; input_experiment: number | null; parent_id: number | null }>(
      'SELECT output_sha256, input_experiment, parent_id FROM experiments WHERE id = ?',
    ).get(id)!;
    expect(row(pruned).output_sha256).toBe(sha256(prunedModel));
    expect(row(quantized).output_sha256).toBe(sha256(modelArtefact(quantized)));
    expect(row(evaluated).output_sha256).toBeNull();
    expect(row(pruned).input_experiment).toBeNull();
    expect(row(quantized).input_experiment).toBe(pruned);
    expect(row(fromFolder).input_experiment).toBe(pruned);
    expect(history.get(fromFolder).modelPath).toBe(prunedModel);
    // parent_id stays the evaluation of the job's own input (the original for the prune).
    expect(row(pruned).parent_id).toBe(evaluated);
  }, 240_000);

  it('answers the tree original → prune → quantize from any of its experiments', () => {
    const expected = {
      id: evaluated, kind: 'model',
      children: [{ id: pruned, kind: 'prune', children: [{ id: quantized, kind: 'quantize', children: [] }, { id: fromFolder, kind: 'quantize', children: [] }] }],
    };
    for (const id of [pruned, quantized, fromFolder]) {
      const tree = history.lineage(id);
      expect(tree.current).toBe(id);
      expect(shape(tree.root)).toEqual(expected);
      expect(tree.truncated).toBe(0);
    }
    const tree = history.lineage(quantized);
    expect(tree.root.name).toBe(path.basename(STORIES.model));
    const prune = tree.root.children[0];
    expect(prune.status).toBe('done');
    expect(prune.name).toBe('pruned');
    // Each step carries its headline, the result's perplexity first.
    const ppl = (n: LineageNode) => n.headline.find((m) => m.name === 'perplexity');
    expect(ppl(tree.root)?.value).toBeGreaterThan(1);
    expect(ppl(prune)?.subject).toBe('result');
    expect(ppl(prune.children[0])?.subject).toBe('result');
    expect(ppl(prune.children[0])?.value).not.toBe(ppl(prune)?.value);
  });

  it('the report of a real quantization charts its per-weight figures and shows its lineage', () => {
    const d = history.get(quantized);
    const data = reportData([d], { lineage: history.lineage(quantized) });
    expect(data.series.length).toBeGreaterThan(0);
    expect(data.series[0].values[0].filter((v) => v !== null).length).toBeGreaterThan(1);
    const html = renderReport([d], 'html', { lineage: history.lineage(quantized) });
    expect(html).toContain('<path class="line series-0" d="M');
    expect(html).toMatch(/<span class="current">#\d+ quantize · pruned then quantized<\/span>/);
    expect(html).not.toMatch(/<script|\b(src|href)=/i);
  });

  it('the evaluation of the original is the root, not a child', () => {
    const tree = history.lineage(evaluated);
    expect(tree.root.id).toBe(evaluated);
    expect(tree.root.children.map((c) => c.id)).toContain(pruned);
  });

  it('a deleted middle step leaves its children under the original', () => {
    history.delete(pruned);
    const tree = history.lineage(quantized);
    expect(tree.root.children.map((c) => c.id).sort()).toEqual([quantized, fromFolder].sort());
    expect(() => history.lineage(pruned)).toThrow(/no experiment/);
  });
});
