/**
 * Encoders end to end: a tiny BERT-style classifier (4 blocks, dim 64, the all-MiniLM-L6-v2 WordPiece
 * tokenizer with a trimmed embedding: the model maps each of the 30,522 token ids to one of the rows of
 * the tokens seen in the training split, every other id to a shared row) is fine-tuned on 654 SST-2
 * dev sentences and evaluated on the 218 held out (no sentence in both), reaching accuracy ≥ 0.65
 * (chance 0.5); its predictions do not depend on the batching; a 2-block student initialised from its
 * first and last blocks and distilled from it (T = 2, α = 0.5) keeps ≥ 90 % of its accuracy above chance.
 * A feature-extraction export gets a seeded classification head that trains and is written with the model.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { readLabelled, splitLabelled, type LabelledData } from '../../main/engine/data/labelled.ts';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { isWhittleError } from '../../main/engine/errors.ts';
import { evaluateAccuracy } from '../../main/engine/evaluate/accuracy.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { initializerMap } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorFloat32 } from '../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { trainClassifier, type ClassifierTrainConfig } from '../../main/engine/train/train-classifier.ts';
import { blocksOf, buildBertOnnx, randomBertWeights, trimmedVocabulary, type BertShape, type BertWeights } from '../helpers/bert-onnx.ts';
import { fixture, tempDir } from '../helpers/fixtures.ts';

const TOKENIZER = fixture('tokenizers', 'all-MiniLM-L6-v2', 'tokenizer.json');
const SST2 = fixture('text', 'sst2-glue-dev.tsv');
const tmp = tempDir('whittle-encoder-');
afterAll(() => tmp.cleanup());

const CONFIG: ClassifierTrainConfig = { epochs: 3, batch: 16, length: 32, lr: 3e-3, warmupSteps: 10, minLrRatio: 0.1, weightDecay: 0.01, clipNorm: 1, freeze: [], seed: 1 };

async function sst2(): Promise<{ train: LabelledData; test: LabelledData; shape: BertShape }> {
  const { train, test } = splitLabelled(await readLabelled(SST2), 0.25, 7);
  const tok = await loadTokenizer(TOKENIZER);
  const vocab = trimmedVocabulary(train.examples.map((e) => e.text), (t) => tok.encode(t, { addBos: false }), tok.vocabSize, [101, 102]);
  return { train, test, shape: { vocab: vocab.rows, rowOf: vocab.rowOf, dim: 64, heads: 4, hidden: 128, layers: 4, maxPositions: 64, classes: 2 } };
}

async function trainedWeights(modelPath: string, like: BertWeights): Promise<BertWeights> {
  const inits = initializerMap((await readModel(modelPath)).proto.graph!);
  const out: BertWeights = new Map();
  for (const [name, t] of like) out.set(name, { dims: t.dims, data: await readTensorFloat32(inits.get(name)!) });
  return out;
}

describe('encoder classification', () => {
  it('fine-tunes a tiny BERT on SST-2 above chance, batch-invariantly, and a 2-block student distilled from it keeps most of it', async () => {
    const { train, test, shape } = await sst2();
    const trainLines = new Set(train.examples.map((e) => e.line));
    expect(test.examples.some((e) => trainLines.has(e.line))).toBe(false);
    const ctx = quietContext(tmp.dir);
    const initial = randomBertWeights(shape, 1);
    const initPath = path.join(tmp.dir, 'teacher-init.onnx');
    await writeModel(buildBertOnnx(shape, initial), initPath);

    const teacher = await trainClassifier({ modelPath: initPath, tokenizerPath: TOKENIZER, train, outDir: path.join(tmp.dir, 'teacher'), config: CONFIG }, ctx);
    expect(teacher.details.steps).toBe(3 * Math.floor(654 / 16));
    expect(teacher.details.headAdded).toBe(false);
    expect(teacher.details.finalLoss).toBeLessThan(teacher.details.firstLoss / 2);
    const before = await evaluateAccuracy(initPath, test, { tokenizerPath: TOKENIZER });
    const acc = await evaluateAccuracy(teacher.folder.modelPath, test, { tokenizerPath: TOKENIZER, batch: 64 });
    expect(acc.count).toBe(218);
    expect(acc.confusion.flat().reduce((a, x) => a + x, 0)).toBe(218);
    expect(acc.accuracy).toBeGreaterThanOrEqual(0.65);
    expect(acc.macroF1).toBeGreaterThanOrEqual(0.6);
    expect(acc.examples.length).toBe(8);

    // Padding does not change a prediction: one example per run (no padding) against 64 per run.
    const single = await evaluateAccuracy(teacher.folder.modelPath, test, { tokenizerPath: TOKENIZER, batch: 1 });
    expect(single.predictions).toEqual(acc.predictions);

    // Student: embeddings, blocks 0 and 3, classifier of the fine-tuned teacher; distilled on the same split.
    const studentInit = path.join(tmp.dir, 'student-init.onnx');
    await writeModel(buildBertOnnx({ ...shape, layers: 2 }, blocksOf(await trainedWeights(teacher.folder.modelPath, initial), [0, 3])), studentInit);
    const studentBefore = await evaluateAccuracy(studentInit, test, { tokenizerPath: TOKENIZER });
    const student = await trainClassifier({
      modelPath: studentInit, tokenizerPath: TOKENIZER, train, outDir: path.join(tmp.dir, 'student'),
      teacher: { modelPath: teacher.folder.modelPath, temperature: 2, alpha: 0.5 }, config: { ...CONFIG, epochs: 2, lr: 5e-4 },
    }, ctx);
    const last = student.details.curve.at(-1)!;
    expect(Object.keys(last.parts ?? {}).sort()).toEqual(['ce', 'correct', 'kl']);
    expect(student.details.finalLoss).toBeLessThan(student.details.firstLoss);
    const studentAcc = await evaluateAccuracy(student.folder.modelPath, test, { tokenizerPath: TOKENIZER });
    console.info(`SST-2 held-out (218): untrained ${before.accuracy.toFixed(3)}, teacher (4 blocks) ${acc.accuracy.toFixed(3)} (macro-F1 ${acc.macroF1.toFixed(3)}, train ${teacher.details.seconds.toFixed(1)} s), `
      + `student (blocks 0 and 3) ${studentBefore.accuracy.toFixed(3)} before and ${studentAcc.accuracy.toFixed(3)} after distillation (macro-F1 ${studentAcc.macroF1.toFixed(3)}, ${student.details.seconds.toFixed(1)} s)`);
    expect(studentAcc.accuracy - 0.5).toBeGreaterThanOrEqual(0.9 * (acc.accuracy - 0.5));
  }, 240_000);

  it('adds a seeded first-token classification head to a feature-extraction export, trains it and writes it with the model', async () => {
    const { train, test, shape } = await sst2();
    const small: BertShape = { ...shape, layers: 1 };
    const hidden = path.join(tmp.dir, 'features.onnx');
    await writeModel(buildBertOnnx(small, randomBertWeights(small, 2), 'hidden'), hidden);
    const ctx = quietContext(tmp.dir);
    const r = await trainClassifier({ modelPath: hidden, tokenizerPath: TOKENIZER, train, outDir: path.join(tmp.dir, 'headed'), config: { ...CONFIG, epochs: undefined, steps: 30 }, headSeed: 5 }, ctx);
    expect(r.details.headAdded).toBe(true);
    const inits = initializerMap((await readModel(r.folder.modelPath)).proto.graph!);
    expect(inits.get('classifier.weight')?.dims.map(Number)).toEqual([64, 2]);
    expect(Array.from(await readTensorFloat32(inits.get('classifier.bias')!)).some((b) => b !== 0)).toBe(true);
    const session = await ort.InferenceSession.create(r.folder.modelPath);
    expect(session.outputNames).toEqual(['logits']);
    await session.release();
    const acc = await evaluateAccuracy(r.folder.modelPath, test, { tokenizerPath: TOKENIZER });
    expect(acc.count).toBe(218);
    expect(r.details.curve.slice(-5).reduce((a, p) => a + p.loss, 0) / 5).toBeLessThan(r.details.firstLoss);
  }, 120_000);

  it('refuses before work: data with other classes than the model, an output folder in use, a bad temperature', async () => {
    const { train, shape } = await sst2();
    const three: BertShape = { ...shape, layers: 1, classes: 3 };
    const model = path.join(tmp.dir, 'three.onnx');
    await writeModel(buildBertOnnx(three, randomBertWeights(three, 3)), model);
    const ctx = quietContext(tmp.dir);
    const refusal = async (work: Promise<unknown>): Promise<string> => {
      try { await work; } catch (e) { if (isWhittleError(e) && e.code === 'INVALID_INPUT') return e.message; throw e; }
      throw new Error('expected INVALID_INPUT');
    };
    expect(await refusal(trainClassifier({ modelPath: model, tokenizerPath: TOKENIZER, train, outDir: path.join(tmp.dir, 'x'), config: CONFIG }, ctx))).toMatch(/classifies into 3 classes but the labelled data has 2/);
    const used = path.join(tmp.dir, 'used');
    mkdirSync(path.join(used, 'inside'), { recursive: true });
    expect(await refusal(trainClassifier({ modelPath: model, tokenizerPath: TOKENIZER, train, outDir: used, config: CONFIG }, ctx))).toMatch(/already exists and is not empty/);
    expect(await refusal(trainClassifier({ modelPath: model, tokenizerPath: TOKENIZER, train, outDir: path.join(tmp.dir, 'y'), config: CONFIG, teacher: { modelPath: model, temperature: 0, alpha: 0.5 } }, ctx))).toMatch(/temperature must be above 0/);
  });
});
