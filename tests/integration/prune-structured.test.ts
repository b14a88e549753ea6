/**
 * Structured pruning on real models: the pruned graph runs in onnxruntime with and without cache, its
 * parameter count drops by exactly what the plan removes, and its logits equal those of the original
 * with the same parts zeroed out (written by the project's writer).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { WhittleError } from '../../main/engine/errors.ts';
import { asFeed, decoderFeeds, detectDecoderLayoutFromSession } from '../../main/engine/evaluate/decoder-session.ts';
import { halfToFloat32 } from '../../main/engine/evaluate/fp16.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { countParameters } from '../../main/engine/model/parameters.ts';
import { toNumber } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { keptIndices } from '../../main/engine/prune/structured-apply.ts';
import { pruneStructured, type StructuredResult } from '../../main/engine/prune/structured-step.ts';
import { mapArchitecture, type ArchitectureMap } from '../../main/engine/rewrite/architecture.ts';
import { WeightReader } from '../../main/engine/rewrite/weight-reader.ts';
import { appRoot } from '../../main/paths.ts';
import { fixture, tempDir } from '../helpers/fixtures.ts';

const SAMPLE = path.join(appRoot(), 'main', 'resources', 'sample', 'stories260K-kv.onnx');
const FP16 = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx');
const tmp = tempDir('whittle-prune-structured-');
afterAll(() => tmp.cleanup());
let n = 0;
const out = (): string => path.join(tmp.dir, `out-${n++}`);

/** What to zero in the original for the same effect as the plan: columns or rows of weights. */
type Zero = { name: string; cols?: number[]; rows?: number[] };

function zerosFor(map: ArchitectureMap, r: StructuredResult): Zero[] {
  const z: Zero[] = [];
  if (r.plan.target === 'layers') {
    for (const i of r.plan.layers) {
      const b = map.blocks[i];
      z.push({ name: b.attention.o! }, { name: b.mlp.down! });
    }
    return z;
  }
  for (const c of r.plan.cuts) {
    const b = map.blocks[c.block];
    const gone = (width: number): number[] => { const keep = new Set(keptIndices(c.of, width, c.remove)); return Array.from({ length: c.of * width }, (_, i) => i).filter((i) => !keep.has(i)); };
    if (r.plan.target === 'neurons') z.push({ name: b.mlp.up!, cols: gone(1) }, { name: b.mlp.down!, rows: gone(1) }, ...(b.mlp.gate ? [{ name: b.mlp.gate, cols: gone(1) }] : []));
    else {
      const w = r.plan.groupSize * b.attention.headSize!;
      z.push({ name: b.attention.q!, cols: gone(w) }, { name: b.attention.o!, rows: gone(w) });
    }
  }
  return z;
}

/** The original with the given parts zeroed, written by the project's writer. */
async function zeroedCopy(modelPath: string, zeros: Zero[], dest: string): Promise<string> {
  const model = await readModel(modelPath);
  const reader = new WeightReader();
  for (const z of zeros) {
    const t = model.proto.graph!.initializer.find((x) => x.name === z.name)!;
    const [rows, cols] = t.dims.map((d) => toNumber(d));
    const bytes = Uint8Array.from(await reader.read(t));
    const elem = bytes.length / (rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const hit = z.cols ? z.cols.includes(c) : z.rows ? z.rows.includes(r) : true;
        if (hit) bytes.fill(0, (r * cols + c) * elem, (r * cols + c + 1) * elem);
      }
    }
    t.data = { kind: 'bytes', bytes };
    t.externalData = [];
    t.dataLocation = undefined;
  }
  await reader.close();
  mkdirSync(path.dirname(dest), { recursive: true });
  await writeModel(model, dest, { externalData: 'auto', threshold: 1024, dataFileName: `${path.basename(dest)}.data` });
  return dest;
}

const toF32 = (t: ort.Tensor): Float32Array => (t.type === 'float16' ? halfToFloat32(t.data as unknown as ArrayLike<number>) : (t.data as Float32Array));

/** Logits of a full run over `ids` (empty past), and of the same run as prefill of ids[:-k] + k cached decode steps. */
async function runBoth(modelPath: string, ids: number[], k = 3): Promise<{ full: Float32Array; cached: Float32Array; vocab: number }> {
  const session = await ort.InferenceSession.create(modelPath);
  try {
    const layout = detectDecoderLayoutFromSession(session, modelPath);
    const r = await session.run(decoderFeeds(layout, ids, 1, ids.length, 0));
    const full = toF32(r[layout.logits.name] as ort.Tensor);
    const vocab = full.length / ids.length;
    const p = ids.length - k;
    let res = await session.run(decoderFeeds(layout, ids.slice(0, p), 1, p, 0));
    const rows: Float32Array[] = [toF32(res[layout.logits.name] as ort.Tensor)];
    for (let t = p; t < ids.length; t++) {
      const past = new Map(layout.cache.map((s) => [s.past, asFeed(res[s.present] as ort.Tensor)]));
      res = await session.run(decoderFeeds(layout, [ids[t]], 1, 1, t, past));
      rows.push(toF32(res[layout.logits.name] as ort.Tensor));
    }
    const cached = new Float32Array(full.length);
    let at = 0;
    for (const row of rows) { cached.set(row, at); at += row.length; }
    return { full: Float32Array.from(full), cached, vocab };
  } finally {
    await session.release();
  }
}

const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

async function checkPrune(modelPath: string, step: Record<string, unknown>, ids: number[], tol: number): Promise<StructuredResult> {
  const map = mapArchitecture(await readModel(modelPath));
  const r = await pruneStructured(modelPath, { type: 'prune', method: 'structured', ...step }, out(), quietContext(tmp.dir));
  const before = countParameters((await readModel(modelPath)).proto).parameters;
  const after = countParameters((await readModel(r.modelPath)).proto).parameters;
  expect(r.plan.removedParameters).toBeGreaterThan(0);
  expect(before - after).toBe(r.plan.removedParameters);
  expect(r.warnings).toEqual([]);
  const pruned = await runBoth(r.modelPath, ids);
  const zeroed = await runBoth(await zeroedCopy(modelPath, zerosFor(map, r), path.join(out(), 'zeroed.onnx')), ids);
  expect(pruned.vocab).toBe(zeroed.vocab);
  expect(maxDiff(pruned.full, zeroed.full)).toBeLessThan(tol);
  // With the cache: the prefill + decode logits equal the full re-run.
  expect(maxDiff(pruned.cached, pruned.full)).toBeLessThan(tol);
  return r;
}

const IDS = [1, 403, 407, 261, 378, 425, 306, 395, 370, 269, 289, 318];

describe('structured pruning of the bundled sample (5 blocks, 8 heads, 4 KV heads, MLP 172)', () => {
  it('removes 25 % of the MLP neurons: MLP 172 → 129 in every block', async () => {
    const r = await checkPrune(SAMPLE, { target: 'neurons', ratio: 0.25 }, IDS, 1e-4);
    expect(r.plan.cuts.map((c) => c.remove.length)).toEqual([43, 43, 43, 43, 43]);
    const map = mapArchitecture(await readModel(r.modelPath));
    expect(map.blocks.map((b) => b.mlp.intermediate)).toEqual([129, 129, 129, 129, 129]);
  });

  it('removes one block: its cache inputs and outputs go and the rest are renumbered', async () => {
    const r = await checkPrune(SAMPLE, { target: 'layers', count: 1 }, IDS, 1e-4);
    const model = await readModel(r.modelPath);
    const map = mapArchitecture(model);
    expect(map.blocks).toHaveLength(4);
    const inputs = model.proto.graph!.input.map((i) => i.name);
    expect(inputs).toContain('past_key_values.3.key');
    expect(inputs).not.toContain('past_key_values.4.key');
    expect(model.proto.graph!.output.map((o) => o.name)).not.toContain('present.4.value');
  });

  it('removes one KV group (2 of 8 query heads) per block: 6 heads, 3 KV heads, shapes and cache rewritten', async () => {
    const r = await checkPrune(SAMPLE, { target: 'heads', count: 2 }, IDS, 1e-4);
    expect(r.plan.groupSize).toBe(2);
    const model = await readModel(r.modelPath);
    const map = mapArchitecture(model);
    expect(map.issues).toEqual([]);
    expect(map.blocks.map((b) => [b.attention.heads, b.attention.kvHeads, b.attention.headSize])).toEqual(Array(5).fill([6, 3, 8]));
    const past = model.proto.graph!.input.find((i) => i.name === 'past_key_values.0.key')!;
    expect(toNumber(past.type!.tensorType!.shape!.dim[1].dimValue)).toBe(3);
  });

  it('ranks blocks by block influence on calibration text', async () => {
    const sample = path.join(appRoot(), 'main', 'resources', 'sample');
    const r = await pruneStructured(SAMPLE, {
      type: 'prune', method: 'structured', target: 'layers', count: 1, importance: 'block-influence',
      calibration: { text: path.join(sample, 'tinystories-calibration.txt'), samples: 4, length: 32 },
    }, out(), quietContext(tmp.dir), { tokenizerPath: path.join(sample, 'tokenizer.json') });
    expect(r.plan.layers).toHaveLength(1);
    expect(r.plan.lines[0]).toMatch(/importance/);
  });

  it('ranks neurons by calibration activations', async () => {
    const sample = path.join(appRoot(), 'main', 'resources', 'sample');
    const step = { type: 'prune', method: 'structured', target: 'neurons', ratio: 0.25, calibration: { text: path.join(sample, 'tinystories-calibration.txt'), samples: 4, length: 32 } };
    const opts = { tokenizerPath: path.join(sample, 'tokenizer.json') };
    const act = await pruneStructured(SAMPLE, { ...step, importance: 'activation' }, out(), quietContext(tmp.dir), opts);
    const mag = await pruneStructured(SAMPLE, step, out(), quietContext(tmp.dir), opts);
    expect(act.plan.cuts.map((c) => c.remove.length)).toEqual([43, 43, 43, 43, 43]);
    expect(act.plan.cuts.map((c) => c.remove)).not.toEqual(mag.plan.cuts.map((c) => c.remove));
  });
});

describe('structured pruning of the ORT GenAI fp16 model (MultiHeadAttention, fused norms)', () => {
  it.runIf(existsSync(FP16))('removes neurons and a block; genai_config.json follows', async () => {
    const ids = [1, 450, 4996, 17354, 1701, 432, 17204, 975];
    await checkPrune(FP16, { target: 'neurons', ratio: 0.25 }, ids, 2e-3);
    const r = await checkPrune(FP16, { target: 'layers', count: 1 }, ids, 2e-3);
    const genai = JSON.parse(readFileSync(path.join(path.dirname(r.modelPath), 'genai_config.json'), 'utf8')) as { model: { decoder: { num_hidden_layers: number } } };
    expect(genai.model.decoder.num_hidden_layers).toBe(1);
  });
});

const GPT2 = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx');

describe('structured pruning of the ORT GenAI GPT-2 (fused Attention, combined cache, weights tied across blocks)', () => {
  it.runIf(existsSync(GPT2))('removes a block: it runs, with its combined cache gone and the parameters counted once', async () => {
    const r = await pruneStructured(GPT2, { type: 'prune', method: 'structured', target: 'layers', count: 1 }, out(), quietContext(tmp.dir));
    expect(r.paramsBefore - r.paramsAfter).toBe(r.plan.removedParameters);
    const model = await readModel(r.modelPath);
    expect(model.proto.graph!.input.map((i) => i.name)).toEqual(['input_ids', 'position_ids', 'attention_mask', 'past_0', 'past_1', 'past_2', 'past_3']);
    const ids = [1, 45, 49, 17, 70, 33];
    const run = await runBoth(r.modelPath, ids);
    expect(maxDiff(run.cached, run.full)).toBeLessThan(1e-4);
  });

  it.runIf(existsSync(GPT2))('refuses to resize a weight shared by every block', async () => {
    const e = await pruneStructured(GPT2, { type: 'prune', method: 'structured', target: 'neurons', ratio: 0.25 }, out(), quietContext(tmp.dir)).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect((e as WhittleError).message).toMatch(/shared by 5 nodes/);
  });
});

describe('bad input: a typed error before any work', () => {
  const bad = async (step: Record<string, unknown>, model = SAMPLE): Promise<WhittleError> => {
    const dest = out();
    const e = await pruneStructured(model, { type: 'prune', method: 'structured', ...step }, dest, quietContext(tmp.dir)).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect(existsSync(dest)).toBe(false);
    return e as WhittleError;
  };
  it('removing all heads or all blocks', async () => {
    expect((await bad({ target: 'heads', count: 8 })).message).toMatch(/all 8 heads/);
    expect((await bad({ target: 'layers', count: 5 })).message).toMatch(/all 5 blocks/);
    expect((await bad({ target: 'heads', count: 3 })).message).toMatch(/multiple of 2/);
  });
  it('a ratio outside (0, 1) or a count at or above the number of parts', async () => {
    expect((await bad({ target: 'neurons', ratio: 1 })).code).toBe('INVALID_INPUT');
    expect((await bad({ target: 'neurons', ratio: 0 })).code).toBe('INVALID_INPUT');
    expect((await bad({ target: 'neurons', count: 172 })).message).toMatch(/all 172/);
  });
  it('a model whose architecture cannot be mapped names what was not recognised', async () => {
    const e = await bad({ target: 'neurons', ratio: 0.25 }, fixture('onnx', 'node-tests', 'test_matmul_2d', 'model.onnx'));
    expect(e.code).toBe('UNSUPPORTED_MODEL');
    expect(e.message).toMatch(/could not be mapped: .*attention/);
  });
});
