/**
 * Classifier training checkpoints: a distillation run cancelled after step 7 checkpoints there, and the
 * resumed run ends with the weights of an uninterrupted run bit for bit, its curve continued; a resume
 * with other settings is refused.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readLabelled, splitLabelled } from '../../main/engine/data/labelled.ts';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { isWhittleError } from '../../main/engine/errors.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { initializerMap } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorFloat32 } from '../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { trainClassifier, type ClassifierTrainRequest } from '../../main/engine/train/train-classifier.ts';
import { buildBertOnnx, randomBertWeights, trimmedVocabulary, type BertShape } from '../helpers/bert-onnx.ts';
import { fixture, tempDir } from '../helpers/fixtures.ts';

const TOKENIZER = fixture('tokenizers', 'all-MiniLM-L6-v2', 'tokenizer.json');
const tmp = tempDir('whittle-encoder-resume-');
afterAll(() => tmp.cleanup());

async function weightsOf(modelPath: string): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of initializerMap((await readModel(modelPath)).proto.graph!)) if (t.dataType === 1) out.set(name, await readTensorFloat32(t));
  return out;
}

describe('classifier checkpoints', () => {
  it('cancel at step 7, resume: the curve continues and the weights equal an uninterrupted run bit for bit', async () => {
    const { train } = splitLabelled(await readLabelled(fixture('text', 'sst2-glue-dev.tsv')), 0.5, 3);
    const tok = await loadTokenizer(TOKENIZER);
    const vocab = trimmedVocabulary(train.examples.map((e) => e.text), (t) => tok.encode(t, { addBos: false }), tok.vocabSize, [101, 102]);
    const shape: BertShape = { vocab: vocab.rows, rowOf: vocab.rowOf, dim: 32, heads: 2, hidden: 64, layers: 1, maxPositions: 32, classes: 2 };
    const student = path.join(tmp.dir, 'student.onnx');
    const teacher = path.join(tmp.dir, 'teacher.onnx');
    await writeModel(buildBertOnnx(shape, randomBertWeights(shape, 1)), student);
    await writeModel(buildBertOnnx({ ...shape, layers: 2 }, randomBertWeights({ ...shape, layers: 2 }, 2)), teacher);
    const request = (name: string): ClassifierTrainRequest => ({
      modelPath: student, tokenizerPath: TOKENIZER, train, outDir: path.join(tmp.dir, name), checkpointDir: path.join(tmp.dir, `${name}-ckpt`), checkpointEvery: 5,
      teacher: { modelPath: teacher, temperature: 2, alpha: 0.5 },
      config: { steps: 12, batch: 8, length: 24, lr: 2e-3, warmupSteps: 3, minLrRatio: 0.1, weightDecay: 0.01, clipNorm: 1, freeze: [], seed: 4 },
    });

    const whole = await trainClassifier(request('whole'), quietContext(tmp.dir));

    const abort = new AbortController();
    const cut = request('cut');
    let caught: unknown;
    try {
      await trainClassifier({ ...cut, onPoint: (p) => { if (p.step === 7) abort.abort(); } }, quietContext(tmp.dir, abort.signal));
    } catch (e) {
      caught = e;
    }
    expect(isWhittleError(caught) && caught.code).toBe('CANCELLED');
    const resumed = await trainClassifier({ ...cut, resume: true }, quietContext(tmp.dir));
    expect(resumed.details.resumedFromStep).toBe(7);
    expect(resumed.details.curve.map((p) => p.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(resumed.details.curve.map((p) => p.loss)).toEqual(whole.details.curve.map((p) => p.loss));

    const a = await weightsOf(whole.folder.modelPath);
    const b = await weightsOf(resumed.folder.modelPath);
    const before = await weightsOf(student);
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    let changed = 0;
    for (const [name, w] of a) {
      expect(Buffer.from(b.get(name)!.buffer).equals(Buffer.from(w.buffer)), name).toBe(true);
      if (!Buffer.from(before.get(name)!.buffer).equals(Buffer.from(w.buffer))) changed++;
    }
    expect(changed).toBeGreaterThan(10);

    let refused: unknown;
    try {
      await trainClassifier({ ...cut, outDir: path.join(tmp.dir, 'other'), resume: true, config: { ...cut.config, lr: 1e-3 } }, quietContext(tmp.dir));
    } catch (e) {
      refused = e;
    }
    expect(isWhittleError(refused) && refused.code).toBe('INVALID_INPUT');
  }, 120_000);
});
