/**
 * Encoders through the real job service and engine process: a tiny BERT (2 blocks, dim 32, the
 * all-MiniLM-L6-v2 tokenizer over a trimmed embedding) fine-tuned on SST-2 dev with objective 'classify'
 * for a few steps, the evaluation's accuracy section scoring the original and the result on the same
 * held-out split (0.25, seed 7: 218 of 872 sentences, none of them trained on); the step's own held-out
 * accuracy is the result's. A decoder given the accuracy section with a class left without a verbalizer
 * is refused before any work.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecipeInput } from '../../preload/contract.ts';
import { parseStepDetails } from '../../preload/methods.ts';
import { readLabelled } from '../../main/engine/data/labelled.ts';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { openHistory, type History } from '../../main/history/index.ts';
import { ChildProcessHost, JobService } from '../../main/jobs/index.ts';
import { appRoot } from '../../main/paths.ts';
import { buildBertOnnx, randomBertWeights, trimmedVocabulary, type BertShape } from '../helpers/bert-onnx.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');
const TOKENIZER = fixture('tokenizers', 'all-MiniLM-L6-v2', 'tokenizer.json');
const SST2 = fixture('text', 'sst2-glue-dev.tsv');

let scratch: ReturnType<typeof tempDir>;
let history: History;
let jobs: JobService;
let model: string;

beforeAll(async () => {
  scratch = tempDir('whittle-encoder-job-');
  const tok = await loadTokenizer(TOKENIZER);
  const all = await readLabelled(SST2);
  const vocab = trimmedVocabulary(all.examples.map((e) => e.text), (t) => tok.encode(t, { addBos: false }), tok.vocabSize, [101, 102]);
  const shape: BertShape = { vocab: vocab.rows, rowOf: vocab.rowOf, dim: 32, heads: 2, hidden: 64, layers: 2, maxPositions: 64, classes: 2 };
  model = path.join(scratch.dir, 'tiny-bert.onnx');
  await writeModel(buildBertOnnx(shape, randomBertWeights(shape, 3)), model);
  history = openHistory({ home: scratch.dir });
  jobs = new JobService({ history, host: new ChildProcessHost(WORKER), outputRoot: path.join(scratch.dir, 'outputs'), cancelGraceMs: 20_000, emit: () => {} });
});

afterAll(async () => {
  await jobs.shutdown();
  history.close();
  scratch.cleanup();
});

const split = { heldOut: 0.25, seed: 7 };

describe('classification fine-tuning as a job', () => {
  it('fine-tunes a tiny BERT on SST-2 and scores the original and the result on the held-out split', async () => {
    const recipe = {
      model: { path: model }, tokenizer: { path: TOKENIZER },
      steps: [{ type: 'train', objective: 'classify', labels: { file: SST2, ...split }, steps: 24, batch: 16, length: 32, lr: 3e-3, warmup: 2, checkpointEvery: 100 }],
      evaluation: { accuracy: { file: SST2, ...split, maxLength: 32 }, footprint: true },
    } as RecipeInput;
    const { jobId, experimentId } = await jobs.start(recipe);
    const f = await jobs.whenFinished(jobId);
    expect(f.error).toBeNull();
    expect(f.status).toBe('done');

    const d = history.get(experimentId);
    const metric = (name: string, subject: string): number | undefined => d.metrics.find((m) => m.name === name && m.subject === subject)?.value;
    for (const subject of ['original', 'result']) {
      expect(metric('accuracy_examples', subject)).toBe(218);
      expect(metric('accuracy', subject)).toBeGreaterThanOrEqual(0);
      expect(metric('accuracy', subject)).toBeLessThanOrEqual(1);
      expect(metric('macro_f1', subject)).toBeGreaterThanOrEqual(0);
    }
    // Training moved the weights: the predictions on the held-out split changed.
    const evaluation = d.details.evaluation as Record<string, { accuracy: { confusion: number[][] } }>;
    expect(evaluation.result.accuracy.confusion).not.toEqual(evaluation.original.accuracy.confusion);
    expect(evaluation.result.accuracy.confusion.flat().reduce((a, x) => a + x, 0)).toBe(218);
    // No generations for an encoder.
    expect(d.details.samples).toBeUndefined();

    const train = parseStepDetails(d.details).find((s) => s.key === 'train');
    expect(train?.key).toBe('train');
    if (train?.key !== 'train' || train.objective !== 'classify') throw new Error('expected classify details');
    expect(train.steps).toBe(24);
    expect(train.curve.map((p) => p.step)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
    expect(train.classes).toEqual(['0', '1']);
    expect(train.labels.trainExamples).toBe(654);
    expect(train.labels.heldOutExamples).toBe(218);
    expect(train.finalLoss).toBeLessThan(train.firstLoss);
    // The step scored the same model on the same split as the evaluation did (maxLength = length = 32).
    expect(train.heldOutAccuracy.accuracy).toBe(metric('accuracy', 'result'));
    expect(train.heldOutAccuracy.macroF1).toBe(metric('macro_f1', 'result'));
    rmSync(path.dirname(d.artefacts.find((a) => a.kind === 'model')!.path), { recursive: true, force: true });
  }, 60_000);

  it('refuses before work: the accuracy section on a decoder with a class left unanswered, and classification fine-tuning of a decoder', async () => {
    const onDecoder = await jobs.start({
      model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
      evaluation: { accuracy: { file: SST2, verbalizers: { 0: 'negative' } }, footprint: false },
    } as RecipeInput).then((j) => jobs.whenFinished(j.jobId), (e: unknown) => ({ status: 'refused', error: e as Error }));
    expect(onDecoder.error?.message).toMatch(/Class "1" has no verbalizer/);

    const trainDecoder = await jobs.start({
      model: { path: STORIES.model }, tokenizer: { path: STORIES.tokenizer },
      steps: [{ type: 'train', objective: 'classify', labels: { file: SST2 }, steps: 2, batch: 2, length: 16 }],
    } as RecipeInput).then((j) => jobs.whenFinished(j.jobId), (e: unknown) => ({ status: 'refused', error: e as Error }));
    expect(trainDecoder.error?.message).toMatch(/needs an encoder/);
  }, 30_000);
});
