/**
 * Taylor importance (LLM-Pruner's first-order |Σ w·g|) on the bundled stories260K:
 *   - each score equals the directional derivative of the calibration loss along the group's own weights,
 *     (L(W + εW_k) − L(W − εW_k)) / 2ε, with L evaluated in float64 by the plain reference evaluator on the
 *     same calibration samples (the groups written out here from the weight layout, not from the engine);
 *   - pruning 25 % of the neurons with it runs through the real structured step, and the result loads in
 *     onnxruntime with MLP 129; its perplexity is logged beside magnitude's at the same ratio;
 *   - taylor without calibration, or without a tokenizer, is refused before any work.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleCalibration } from '../../main/engine/calibrate/sampling.ts';
import { validateCalibration } from '../../main/engine/calibrate/validate.ts';
import { readTextFile } from '../../main/engine/data/text-file.ts';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { WhittleError } from '../../main/engine/errors.ts';
import { decoderFeeds, detectDecoderLayoutFromSession, openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { evaluatePerplexity } from '../../main/engine/evaluate/perplexity.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { toNumber } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { pruneStructured } from '../../main/engine/prune/structured-step.ts';
import { taylorScores } from '../../main/engine/prune/taylor-importance.ts';
import { mapArchitecture, type ArchitectureMap } from '../../main/engine/rewrite/architecture.ts';
import { buildTrainingView, type TrainingView } from '../../main/engine/train/view.ts';
import { appRoot } from '../../main/paths.ts';
import { evaluateGraph, loadInitializers, refTensor, type RefTensor } from '../helpers/reference-ops.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';

const SAMPLE_DIR = path.join(appRoot(), 'main', 'resources', 'sample');
const SAMPLE = path.join(SAMPLE_DIR, 'stories260K-kv.onnx');
const TOKENIZER = path.join(SAMPLE_DIR, 'tokenizer.json');
const CALIB_TEXT = path.join(SAMPLE_DIR, 'tinystories-calibration.txt');
const tmp = tempDir('whittle-prune-taylor-');
afterAll(() => tmp.cleanup());
let n = 0;
const out = (): string => path.join(tmp.dir, `out-${n++}`);

// ── the float64 reference ────────────────────────────────────────────────────────────────────────────

/** Three samples of 17 tokens: T = 16 positions each; scored by the engine two rows per run (a padded second run). */
const CALIBRATION = { text: CALIB_TEXT, samples: 3, length: 17, seed: 5 };

interface Reference {
  map: ArchitectureMap;
  view: TrainingView;
  constants: Map<string, RefTensor>;
  ids: number[];
  labels: number[];
}

let ref: Reference;

beforeAll(async () => {
  const source = await readModel(SAMPLE);
  const map = mapArchitecture(source);
  const prepared = await validateCalibration({ model: source, tokenizerPath: TOKENIZER, calibration: CALIBRATION });
  const samples = sampleCalibration(prepared.text, prepared.tokenizer, prepared.options);
  const T = CALIBRATION.length - 1;
  // Every weight an initializer: one view of all samples at once, B = 3.
  const view = await buildTrainingView(source, map, { batch: samples.length, length: T, frozen: () => true, inference: true, scratchDir: tmp.dir });
  const constants = await loadInitializers(view.model.graph!);
  ref = { map, view, constants, ids: samples.flatMap((s) => s.slice(0, T)), labels: samples.flatMap((s) => s.slice(1)) };
}, 120_000);

/** Mean next-token cross-entropy over every position of the samples, in float64. */
function referenceLoss(values: Map<string, RefTensor>): number {
  const { view, ids, labels } = ref;
  const env = new Map(values);
  env.set('input_ids', refTensor(DataType.int64, [view.batch, view.length], ids));
  const logits = evaluateGraph(view.model.graph!, env).get(view.logits)!.data;
  const V = view.vocab;
  let sum = 0;
  for (let r = 0; r < labels.length; r++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[r * V + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[r * V + v] - max);
    sum += Math.log(z) + max - logits[r * V + labels[r]];
  }
  return sum / labels.length;
}

/** A copy of `t` with the entries of rows `rows` (all when null) and columns `cols` (all when null) multiplied by `factor`. */
function scaled(t: RefTensor, rows: [number, number] | null, cols: [number, number] | null, factor: number): RefTensor {
  const [R, C] = t.dims;
  const data = Float64Array.from(t.data);
  for (let r = rows?.[0] ?? 0; r < (rows?.[1] ?? R); r++) for (let c = cols?.[0] ?? 0; c < (cols?.[1] ?? C); c++) data[r * C + c] *= factor;
  return { ...t, data };
}

/** The weights with group `part` of block `block` multiplied by `factor`: W + (factor − 1)·W_k. */
function withGroupScaled(target: 'heads' | 'neurons' | 'layers', block: number, part: number, factor: number): Map<string, RefTensor> {
  const values = new Map(ref.constants);
  const b = ref.map.blocks[block];
  const a = b.attention, m = b.mlp;
  const set = (name: string, rows: [number, number] | null, cols: [number, number] | null): void => { values.set(name, scaled(values.get(name)!, rows, cols, factor)); };
  if (target === 'neurons') {
    set(m.gate!, null, [part, part + 1]);
    set(m.up!, null, [part, part + 1]);
    set(m.down!, [part, part + 1], null);
  } else if (target === 'heads') {
    const d = a.headSize!, w = (a.heads! / a.kvHeads!) * d;
    set(a.q!, null, [part * w, (part + 1) * w]);
    set(a.k!, null, [part * d, (part + 1) * d]);
    set(a.v!, null, [part * d, (part + 1) * d]);
    set(a.o!, [part * w, (part + 1) * w], null);
  } else {
    for (const name of [a.q!, a.k!, a.v!, a.o!, m.gate!, m.up!, m.down!]) set(name, null, null);
  }
  return values;
}

/** (L(W + εW_k) − L(W − εW_k)) / 2ε = Σ_{i∈k} w_i·∂L/∂w_i up to O(ε²). */
function directionalDerivative(target: 'heads' | 'neurons' | 'layers', block: number, part: number, eps = 1e-3): number {
  return (referenceLoss(withGroupScaled(target, block, part, 1 + eps)) - referenceLoss(withGroupScaled(target, block, part, 1 - eps))) / (2 * eps);
}

/** The parts checked: in the first and last block, the highest-scored part and the median one. */
function picked(scores: number[][]): { block: number; part: number }[] {
  const blocks = [0, scores.length - 1];
  return blocks.flatMap((block) => {
    const order = scores[block].map((_, i) => i).sort((x, y) => scores[block][y] - scores[block][x]);
    return [{ block, part: order[0] }, { block, part: order[Math.floor(order.length / 2)] }];
  });
}

describe('taylor scores against a float64 finite-difference reference (stories260K)', () => {
  const src = { modelPath: SAMPLE, tokenizerPath: TOKENIZER, calibration: CALIBRATION };

  for (const target of ['neurons', 'heads'] as const) {
    it(`${target}: |Σ w·g| of a group equals |directional derivative| of the loss along it (relative error ≤ 1e-4)`, async () => {
      const scores = await taylorScores(ref.map, target, src, quietContext(tmp.dir), { batch: 2 });
      expect(scores).toHaveLength(5);
      expect(scores[0]).toHaveLength(target === 'heads' ? 4 : 172);
      const scale = Math.max(...scores.flat());
      for (const { block, part } of picked(scores)) {
        const fd = directionalDerivative(target, block, part);
        const got = scores[block][part];
        expect(Math.abs(got - Math.abs(fd)), `block ${block} ${target} ${part}: taylor ${got}, finite differences ${fd}`).toBeLessThan(1e-4 * Math.abs(fd) + 1e-7 * scale);
      }
    }, 300_000);
  }

  it('layers: one score per block, each the directional derivative along all of the block\'s projections', async () => {
    const scores = await taylorScores(ref.map, 'layers', src, quietContext(tmp.dir), { batch: 2 });
    expect(scores.map((s) => s.length)).toEqual([1, 1, 1, 1, 1]);
    for (const block of [0, 2, 4]) {
      const fd = directionalDerivative('layers', block, 0);
      expect(Math.abs(scores[block][0] - Math.abs(fd)), `block ${block}`).toBeLessThan(1e-4 * Math.abs(fd) + 1e-7);
    }
  }, 300_000);

  it('the element-wise aggregate Σ|w·g| bounds the group one |Σ w·g| from above, part by part, and ranks differently', async () => {
    const ctx = quietContext(tmp.dir);
    const group = await taylorScores(ref.map, 'neurons', src, ctx, { batch: 3 });
    const element = await taylorScores(ref.map, 'neurons', src, ctx, { batch: 3, aggregate: 'element' });
    for (const [b, row] of group.entries()) for (const [j, s] of row.entries()) expect(element[b][j]).toBeGreaterThanOrEqual(s * (1 - 1e-6));
    expect(element).not.toEqual(group);
  }, 300_000);
});

// ── end to end ───────────────────────────────────────────────────────────────────────────────────────

describe('pruning 25 % of the neurons by taylor importance, through the structured step', () => {
  it('writes a model with MLP 129 that runs in onnxruntime; perplexity logged beside magnitude at the same ratio', async () => {
    const calibration = { text: CALIB_TEXT, samples: 32, length: 128 };
    const step = { type: 'prune', method: 'structured', target: 'neurons', ratio: 0.25, calibration };
    const taylor = await pruneStructured(SAMPLE, { ...step, importance: 'taylor' }, out(), quietContext(tmp.dir), { tokenizerPath: TOKENIZER });
    const magnitude = await pruneStructured(SAMPLE, step, out(), quietContext(tmp.dir), { tokenizerPath: TOKENIZER });
    expect(taylor.plan.cuts.map((c) => c.remove.length)).toEqual([43, 43, 43, 43, 43]);
    expect(taylor.paramsBefore - taylor.paramsAfter).toBe(taylor.plan.removedParameters);
    expect(taylor.plan.cuts.map((c) => c.remove)).not.toEqual(magnitude.plan.cuts.map((c) => c.remove));

    const model = await readModel(taylor.modelPath);
    expect(mapArchitecture(model).blocks.map((b) => b.mlp.intermediate)).toEqual([129, 129, 129, 129, 129]);
    const up = model.proto.graph!.initializer.find((t) => t.name === mapArchitecture(model).blocks[0].mlp.up)!;
    expect(up.dims.map((d) => toNumber(d))).toEqual([64, 129]);
    const session = await ort.InferenceSession.create(taylor.modelPath);
    try {
      const layout = detectDecoderLayoutFromSession(session, taylor.modelPath);
      const ids = [1, 403, 407, 261, 378, 425, 306, 395];
      const r = await session.run(decoderFeeds(layout, ids, 1, ids.length, 0));
      const logits = r[layout.logits.name] as ort.Tensor;
      expect(logits.dims).toEqual([1, ids.length, 512]);
      expect((logits.data as Float32Array).every(Number.isFinite)).toBe(true);
    } finally {
      await session.release();
    }

    // Perplexity of the original and both pruned models on the held-out stories (documents, first 100).
    const tokenizer = await loadTokenizer(TOKENIZER);
    const text = await readTextFile(STORIES.text);
    const ppl = async (file: string): Promise<number> => {
      const decoder = await openDecoder(file, { threads: 1 });
      try {
        return (await evaluatePerplexity(decoder, tokenizer, text, { protocol: 'documents', window: 256, maxSamples: 100, minTokens: 16 }, quietContext(tmp.dir))).perplexity;
      } finally {
        await decoder.release();
      }
    };
    const [base, byTaylor, byMagnitude] = [await ppl(SAMPLE), await ppl(taylor.modelPath), await ppl(magnitude.modelPath)];
    console.log(`stories260K neurons −25 %: perplexity original ${base.toFixed(4)}, taylor ${byTaylor.toFixed(4)}, magnitude ${byMagnitude.toFixed(4)}`);
    for (const p of [byTaylor, byMagnitude]) {
      expect(Number.isFinite(p)).toBe(true);
      expect(p).toBeGreaterThan(base);
    }
  }, 600_000);
});

const FP16 = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx');

describe('taylor importance on the ORT GenAI fp16 model (MultiHeadAttention, fused norms, fp16 weights)', () => {
  it.runIf(existsSync(FP16))('ranks neurons through a float32 training view and prunes half of them', async () => {
    const step = { type: 'prune', method: 'structured', target: 'neurons', ratio: 0.5, importance: 'taylor', taylorAggregate: 'element', calibration: { text: CALIB_TEXT, samples: 4, length: 32 } };
    const r = await pruneStructured(FP16, step, out(), quietContext(tmp.dir), { tokenizerPath: path.join(path.dirname(FP16), 'tokenizer.json') });
    expect(r.plan.cuts.map((c) => `${c.remove.length}/${c.of}`)).toEqual(['32/64', '32/64']);
    expect(r.paramsBefore - r.paramsAfter).toBe(r.plan.removedParameters);
    expect(r.warnings).toEqual([]);
  }, 120_000);
});

// ── bad input ────────────────────────────────────────────────────────────────────────────────────────

describe('bad input: a typed error before any work', () => {
  const refused = async (step: Record<string, unknown>, options = {}): Promise<WhittleError> => {
    const dest = out();
    const e = await pruneStructured(SAMPLE, { type: 'prune', method: 'structured', target: 'neurons', ratio: 0.25, ...step }, dest, quietContext(tmp.dir), options).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect(existsSync(dest)).toBe(false);
    return e as WhittleError;
  };

  it('taylor without calibration names the missing calibration', async () => {
    const e = await refused({ importance: 'taylor' }, { tokenizerPath: TOKENIZER });
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/calibration: the taylor importance is measured on calibration text: add calibration/);
  });

  it('taylor with calibration but no tokenizer asks for the tokenizer', async () => {
    const e = await refused({ importance: 'taylor', calibration: { text: CALIB_TEXT, samples: 2, length: 16 } });
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/taylor importance is measured on calibration text, which needs a tokenizer/);
  });

  it('a Taylor aggregate without the taylor importance', async () => {
    const e = await refused({ taylorAggregate: 'element' });
    expect(e.message).toMatch(/taylorAggregate: taylorAggregate applies to the taylor importance only/);
  });
});
