/**
 * Calibration on a real model (stories260K) with real onnxruntime: the streamed statistics equal a direct
 * computation from the same activations, are reproducible by seed, fail early on bad input, stop on
 * cancellation and keep memory flat in the number of samples.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  activationInputsFor, collectCalibrationStats, rangeFromStats, sampleCalibration, validateCalibration,
  type AccumulatorKind, type CalibrationRequest, type TensorStats,
} from '../../main/engine/calibrate/index.ts';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { isWhittleError } from '../../main/engine/errors.ts';
import { quietContext, type JobContext } from '../../main/engine/job-context.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { planTargets } from '../../main/engine/quantize/targets.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';

const scratch = tempDir('whittle-calibrate-');
afterAll(() => scratch.cleanup());
afterEach(() => { vi.restoreAllMocks(); });

const ACCUMULATORS: AccumulatorKind[] = ['hessian', 'minmax', 'histogram', 'l2'];

let tensors: string[] = [];
let workCount = 0;
function work(): string {
  const dir = path.join(scratch.dir, `work-${workCount++}`);
  mkdirSync(dir);
  return dir;
}

const request = (over: Partial<CalibrationRequest> & { samples?: number; length?: number; seed?: number } = {}): CalibrationRequest => ({
  modelPath: STORIES.model,
  tokenizerPath: STORIES.tokenizer,
  tensors,
  accumulators: ACCUMULATORS,
  calibration: { text: STORIES.text, samples: over.samples ?? 4, length: over.length ?? 64, seed: over.seed ?? 0 },
  fromEnd: 0.5,
  ...Object.fromEntries(Object.entries(over).filter(([k]) => !['samples', 'length', 'seed'].includes(k))),
});

beforeAll(async () => {
  const model = await readModel(STORIES.model);
  tensors = activationInputsFor(model, planTargets(model.proto.graph!, { blockSize: 16, keep: [] }).targets).map((i) => i.tensor);
});

/** The activations of `names` for each sample, by a plain onnxruntime run of a model written here. */
async function directActivations(names: string[], samples: number[][]): Promise<Map<string, Float32Array[]>> {
  const model = await readModel(STORIES.model);
  for (const name of names) model.proto.graph!.output.push({ name, type: { tensorType: { elemType: 1 } }, metadataProps: [] });
  const dir = path.join(scratch.dir, 'direct');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'model.onnx');
  await writeModel(model, file);
  const session = await ort.InferenceSession.create(file);
  const out = new Map<string, Float32Array[]>(names.map((n) => [n, []]));
  try {
    for (const ids of samples) {
      const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]) };
      for (let l = 0; l < 5; l++) for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, 4, 0, 8]);
      const r = await session.run(feeds);
      for (const n of names) out.get(n)!.push(r[n].data as Float32Array);
    }
  } finally {
    await session.release();
  }
  return out;
}

describe('collectCalibrationStats on stories260K', () => {
  let stats: Map<string, TensorStats>;
  const N = 4, L = 64;

  beforeAll(async () => {
    stats = await collectCalibrationStats(request({ samples: N, length: L, seed: 7 }), quietContext(work()));
  });

  it('returns every requested activation with N·L rows and its width', () => {
    expect([...stats.keys()]).toEqual(tensors);
    for (const s of stats.values()) {
      expect(s.rows).toBe(N * L);
      expect([64, 172]).toContain(s.d);
    }
  });

  it('equals a direct computation from the same activations (min/max, ‖x_j‖², histogram total, XᵀX)', async () => {
    const tokenizer = await loadTokenizer(STORIES.tokenizer);
    const { text } = await validateCalibration({ modelPath: STORIES.model, tokenizerPath: STORIES.tokenizer, calibration: { text: STORIES.text, samples: N, length: L, seed: 7 } });
    const samples = sampleCalibration(text, tokenizer, { samples: N, length: L, seed: 7, fromEnd: 0.5 });
    const checked = [tensors[0], tensors[3], tensors[tensors.length - 1]];
    const acts = await directActivations(checked, samples);
    for (const name of checked) {
      const s = stats.get(name)!;
      const d = s.d;
      const h = new Float64Array(d * d);
      const l2 = new Float64Array(d);
      let min = Infinity, max = -Infinity, rows = 0;
      for (const x of acts.get(name)!) {
        const n = x.length / d;
        rows += n;
        for (let r = 0; r < n; r++) {
          for (let i = 0; i < d; i++) {
            const xi = x[r * d + i];
            min = Math.min(min, xi); max = Math.max(max, xi);
            l2[i] += xi * xi;
            for (let j = 0; j < d; j++) h[i * d + j] += xi * x[r * d + j];
          }
        }
      }
      expect(rows).toBe(s.rows);
      expect(s.min).toBe(min);
      expect(s.max).toBe(max);
      for (let j = 0; j < d; j++) expect(s.l2![j]).toBeCloseTo(l2[j], 6);
      expect(s.histogram!.counts.reduce((a, c) => a + c, 0)).toBe(rows * d);
      expect(s.histogram!.max).toBeGreaterThanOrEqual(Math.max(-min, max));
      const H = s.hessian!;
      let scale = 0;
      for (const v of h) scale = Math.max(scale, Math.abs(v));
      let worst = 0;
      for (let i = 0; i < d * d; i++) worst = Math.max(worst, Math.abs(H[i] - h[i]));
      expect(worst / scale).toBeLessThan(1e-5);
    }
  });

  it('Hessians are symmetric with a non-negative diagonal and vᵀHv ≥ 0', () => {
    for (const s of stats.values()) {
      const H = s.hessian!, d = s.d;
      let scale = 0;
      for (let i = 0; i < d; i++) { expect(H[i * d + i]).toBeGreaterThanOrEqual(0); scale = Math.max(scale, H[i * d + i]); }
      for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) expect(Math.abs(H[i * d + j] - H[j * d + i])).toBeLessThanOrEqual(1e-6 * scale);
      for (let t = 0; t < 4; t++) {
        const v = Float64Array.from({ length: d }, (_, i) => Math.sin(i * 1.7 + t));
        let q = 0;
        for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) q += v[i] * H[i * d + j] * v[j];
        expect(q).toBeGreaterThanOrEqual(-1e-4 * scale);
      }
    }
  });

  it('gives ranges that order as expected: percentile and entropy inside minmax', () => {
    for (const s of stats.values()) {
      const mm = rangeFromStats(s, 'minmax');
      for (const method of ['percentile', 'entropy'] as const) {
        const r = rangeFromStats(s, method);
        expect(r.min).toBeGreaterThanOrEqual(mm.min);
        expect(r.max).toBeLessThanOrEqual(mm.max);
        expect(r.max).toBeGreaterThan(0);
      }
    }
  });

  it('is reproducible: same seed → identical bytes; another seed → different statistics', async () => {
    const few = tensors.slice(0, 3);
    const a = await collectCalibrationStats(request({ tensors: few, seed: 7 }), quietContext(work()));
    for (const t of few) {
      const s = stats.get(t)!, r = a.get(t)!;
      expect(Buffer.from(r.hessian!.buffer).equals(Buffer.from(s.hessian!.buffer))).toBe(true);
      expect(Buffer.from(r.l2!.buffer).equals(Buffer.from(s.l2!.buffer))).toBe(true);
      expect(Buffer.from(r.histogram!.counts.buffer).equals(Buffer.from(s.histogram!.counts.buffer))).toBe(true);
    }
    const b = await collectCalibrationStats(request({ tensors: few, seed: 8 }), quietContext(work()));
    expect(Buffer.from(b.get(few[0])!.l2!.buffer).equals(Buffer.from(stats.get(few[0])!.l2!.buffer))).toBe(false);
  });
});

describe('calibration input errors come before any onnxruntime session', () => {
  async function failure(req: CalibrationRequest): Promise<{ error: unknown; sessions: number; left: string[] }> {
    const spy = vi.spyOn(ort.InferenceSession, 'create');
    const dir = work();
    let error: unknown;
    try { await collectCalibrationStats(req, quietContext(dir)); } catch (e) { error = e; }
    return { error, sessions: spy.mock.calls.length, left: readdirSync(dir) };
  }

  it('too short a text', async () => {
    const text = path.join(scratch.dir, 'short.txt');
    writeFileSync(text, 'Once upon a time, there was a little cat.\n\nIt liked milk.\n');
    const { error, sessions, left } = await failure({ ...request(), calibration: { text, samples: 16, length: 128 }, fromEnd: 1 });
    expect(isWhittleError(error) && error.code).toBe('INVALID_INPUT');
    expect((error as Error).message).toMatch(/^The calibration text short\.txt yields about 0 sequences of 128 tokens; 16 were requested\. Use a longer text, fewer samples or a shorter length\.$/);
    expect(sessions).toBe(0);
    expect(left).toEqual([]);
  });

  it('a tokenizer that does not belong to the model', async () => {
    const { error, sessions, left } = await failure({ ...request(), tokenizerPath: fixture('tokenizers', 'gpt2', 'tokenizer.json') });
    expect(isWhittleError(error) && error.code).toBe('INVALID_INPUT');
    expect((error as Error).message).toBe('The tokenizer has 50257 tokens but the model predicts 512: they do not belong together. Choose the tokenizer that came with the model.');
    expect(sessions).toBe(0);
    expect(left).toEqual([]);
  });

  it('a missing or empty text file', async () => {
    const missing = await failure({ ...request(), calibration: { text: path.join(scratch.dir, 'nope.txt') } });
    expect(isWhittleError(missing.error) && missing.error.code).toBe('NOT_FOUND');
    const empty = path.join(scratch.dir, 'empty.txt');
    writeFileSync(empty, '  \n\n ');
    const blank = await failure({ ...request(), calibration: { text: empty } });
    expect((blank.error as Error).message).toMatch(/empty/);
    expect(missing.sessions + blank.sessions).toBe(0);
  });

  it('a tensor the model does not have', async () => {
    const { error, sessions } = await failure({ ...request(), tensors: ['no_such_tensor'] });
    expect((error as Error).message).toMatch(/no tensor named 'no_such_tensor'/);
    expect(sessions).toBe(0);
  });
});

describe('cancellation and memory', () => {
  it('stops between batches and removes its scratch folder', async () => {
    const controller = new AbortController();
    const dir = work();
    const seen: number[] = [];
    const ctx: JobContext = {
      ...quietContext(dir, controller.signal),
      progress: (p) => { seen.push(p.done); if (p.done >= 2) controller.abort(); },
    };
    let error: unknown;
    try { await collectCalibrationStats(request({ samples: 12 }), ctx); } catch (e) { error = e; }
    expect(isWhittleError(error) && error.code).toBe('CANCELLED');
    expect(Math.max(...seen)).toBe(2);
    expect(readdirSync(dir)).toEqual([]);
  });

  // 32 and 128 samples of 256 tokens: the larger run streams ~170 MB more activations through the
  // accumulators (20 tensors × 96 more sequences); keeping them would show as +170 MB. What is held after
  // a full collection must not grow at all; the peak (VmHWM) moves by up to ~±20 MB with V8's heap sizing,
  // which adapts to the allocation rate, hence the generous bound on it.
  it('memory does not grow with the number of samples (32 vs 128, child processes)', () => {
    const child = path.resolve(import.meta.dirname, '../unit/calibrate/peak-rss-child.ts');
    const run = (samples: number): { peakRssKb: number; rows: number; retainedKb: number } => {
      const out = execFileSync(process.execPath, ['--expose-gc', child, STORIES.model, STORIES.tokenizer, STORIES.text, String(samples), '256', work(), ACCUMULATORS.join(',')], { encoding: 'utf8' });
      return JSON.parse(out.trim().split('\n').pop()!);
    };
    const few = run(32);
    const many = run(128);
    expect(few.rows).toBe(32 * 256);
    expect(many.rows).toBe(128 * 256);
    expect((many.retainedKb - few.retainedKb) / 1024).toBeLessThan(4);
    expect((many.peakRssKb - few.peakRssKb) / 1024).toBeLessThan(60);
  }, 120_000);
});
