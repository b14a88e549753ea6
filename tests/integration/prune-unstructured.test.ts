/**
 * Unstructured and N:M pruning of the bundled sample (stories260K): real ONNX written and run by
 * onnxruntime; exact sparsity per weight; keep and the LM head honoured; bad input refused before any
 * work; and with a tiny calibration (8 × 64), Wanda and SparseGPT far better than magnitude at 50 %,
 * 2:4 worse than 50 % unstructured, SparseGPT + 4-bit written as MatMulNBits.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isWhittleError } from '../../main/engine/errors.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { initializerMap } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { LM_HEAD_REASON, pruneUnstructured, type PruneResult, type UnstructuredPruneStep } from '../../main/engine/prune/unstructured.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { storiesPerplexity } from './quantize-gptq-helpers.ts';

const SAMPLE = path.resolve('main/resources/sample');
const MODEL = path.join(SAMPLE, 'stories260K-kv.onnx');
const TOKENIZER = path.join(SAMPLE, 'tokenizer.json');
const CALIB = { text: path.join(SAMPLE, 'tinystories-calibration.txt'), samples: 8, length: 64, seed: 0 };

let tmp: ReturnType<typeof tempDir>;
let counter = 0;
beforeAll(() => { tmp = tempDir('whittle-prune-'); });
afterAll(() => tmp.cleanup());

const prune = (step: Record<string, unknown>): Promise<PruneResult> =>
  pruneUnstructured(MODEL, { type: 'prune', ...step } as UnstructuredPruneStep, path.join(tmp.dir, `out-${counter++}`), quietContext(tmp.dir), { tokenizerPath: TOKENIZER });

async function refusal(step: Record<string, unknown>): Promise<string> {
  const out = path.join(tmp.dir, `bad-${counter++}`);
  const e = await prune(step).then(() => null, (x: unknown) => x);
  expect(isWhittleError(e) && e.code === 'INVALID_INPUT', String(e)).toBe(true);
  expect(existsSync(out)).toBe(false);
  return (e as Error).message;
}

describe('bad input, before any work', () => {
  it('sparsity outside (0, 1), an N:M pattern that does not divide K, Wanda and SparseGPT without calibration', async () => {
    expect(await refusal({ method: 'magnitude', sparsity: 1 })).toMatch(/sparsity must be below 1/);
    expect(await refusal({ method: 'magnitude', sparsity: 0 })).toMatch(/sparsity must be above 0/);
    expect(await refusal({ method: 'magnitude', pattern: '2:48' })).toMatch(/multiple of 48.*K = 64/);
    expect(await refusal({ method: 'magnitude', pattern: '4:2' })).toMatch(/N:M pattern/);
    expect(await refusal({ method: 'wanda', sparsity: 0.5 })).toMatch(/calibration/);
    expect(await refusal({ method: 'sparsegpt', sparsity: 0.5 })).toMatch(/calibration/);
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith('bad-'))).toEqual([]);
  });
});

describe('stories260K', () => {
  const ppl: Record<string, number> = {};

  it('magnitude 50 %: exactly half of every weight zero, keep patterns and the tied embedding dense, the model runs in onnxruntime', async () => {
    const r = await prune({ method: 'magnitude', sparsity: 0.5, keep: ['layers\\.0\\..*q_proj'] });
    const m = await readModel(r.modelPath);
    const inits = initializerMap(m.proto.graph!);
    expect(r.weights.length).toBeGreaterThan(20);
    for (const w of r.weights) expect(w.zeros).toBe(w.params / 2);
    expect(r.skipped.some((s) => /keep pattern/.test(s.reason))).toBe(true);
    // The sample ties its LM head to the embedding (behind a Transpose): never a target.
    expect(r.weights.every((w) => w.block !== null && w.role !== 'lm_head')).toBe(true);
    expect(r.skipped.every((s) => s.reason !== LM_HEAD_REASON)).toBe(true);
    expect(r.weights.some((w) => /layers\.0\..*q_proj/.test(w.name))).toBe(false);
    expect(inits.size).toBeGreaterThan(0);
    ppl.magnitude = await storiesPerplexity(r.modelPath, tmp.dir);
    expect(Number.isFinite(ppl.magnitude)).toBe(true);
  });

  it('Wanda and SparseGPT at 50 % far better than magnitude; 2:4 worse than 50 % unstructured', async () => {
    const wanda = await prune({ method: 'wanda', sparsity: 0.5, calibration: CALIB });
    const sparsegpt = await prune({ method: 'sparsegpt', sparsity: 0.5, calibration: CALIB });
    const wanda24 = await prune({ method: 'wanda', pattern: '2:4', calibration: CALIB });
    for (const r of [wanda, sparsegpt, wanda24]) expect(r.achievedSparsity).toBeCloseTo(0.5, 6);
    ppl.wanda = await storiesPerplexity(wanda.modelPath, tmp.dir);
    ppl.sparsegpt = await storiesPerplexity(sparsegpt.modelPath, tmp.dir);
    ppl.wanda24 = await storiesPerplexity(wanda24.modelPath, tmp.dir);
    expect(ppl.wanda).toBeLessThan(0.75 * ppl.magnitude);
    expect(ppl.sparsegpt).toBeLessThan(0.75 * ppl.magnitude);
    expect(ppl.wanda24).toBeGreaterThan(ppl.wanda);
    expect(sparsegpt.weights.every((w) => (w.loss ?? 0) > 0)).toBe(true);
  });

  it('SparseGPT 50 % + 4-bit: MatMulNBits in one step, smaller than the float file, runs', async () => {
    const r = await prune({ method: 'sparsegpt', sparsity: 0.5, calibration: CALIB, sequential: false, quantize: { bits: 4, blockSize: 32 } });
    const m = await readModel(r.modelPath);
    expect(m.proto.graph!.node.filter((n) => n.opType === 'MatMulNBits').length).toBe(r.weights.length);
    expect(r.achievedSparsity).toBeGreaterThanOrEqual(0.5);
    const plain = await prune({ method: 'magnitude', sparsity: 0.5 });
    expect(r.bytes).toBeLessThan(0.6 * plain.bytes);
    expect(await storiesPerplexity(r.modelPath, tmp.dir)).toBeLessThan(ppl.magnitude);
  });

  it('sequential SparseGPT: swept weights spilled to a scratch file give the same model, and the file is gone afterwards', async () => {
    const step = { type: 'prune', method: 'sparsegpt', sparsity: 0.5, calibration: CALIB } as UnstructuredPruneStep;
    const work = path.join(tmp.dir, 'spill-work');
    mkdirSync(work);
    const inMemory = await pruneUnstructured(MODEL, step, path.join(tmp.dir, 'spill-a'), quietContext(work), { tokenizerPath: TOKENIZER });
    const spilled = await pruneUnstructured(MODEL, step, path.join(tmp.dir, 'spill-b'), quietContext(work), { tokenizerPath: TOKENIZER, spoolMemory: 0 });
    expect(readFileSync(path.join(spilled.outDir, 'model.onnx.data')).equals(readFileSync(path.join(inMemory.outDir, 'model.onnx.data')))).toBe(true);
    expect(readdirSync(work)).toEqual([]);
  });
});
