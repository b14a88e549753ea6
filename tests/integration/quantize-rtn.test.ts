/**
 * Weight-only RTN on real models: the output folders load and run in onnxruntime-node, the graphs carry
 * MatMulNBits with the right attributes, skipped weights come with reasons, and failures leave nothing
 * that looks finished.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WhittleError } from '../../main/engine/errors.ts';
import { openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { quietContext, type Progress } from '../../main/engine/job-context.ts';
import { attrInt, initializerMap } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import type { NodeProto } from '../../main/engine/onnx/proto-types.ts';
import { quantizeWeightOnly } from '../../main/engine/quantize/weight-only.ts';
import { readManifest, updateManifest } from '../../main/engine/rewrite/manifest.ts';
import { QuantizeRtnStep, type RecipeInput } from '../../preload/recipe.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';

const GPT2 = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx');
const LLAMA16 = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx');
const SOFTMAX = fixture('onnx', 'node-tests', 'test_softmax_example', 'model.onnx');
const PROMPT = [1, 403, 407, 261, 378, 395, 275, 285];

const step = (s: Partial<QuantizeRtnStep>): QuantizeRtnStep => QuantizeRtnStep.parse({ type: 'quantize', method: 'rtn', ...s });

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => { tmp = tempDir('whittle-quantize-'); });
afterAll(() => tmp.cleanup());
let counter = 0;
const outDir = (label: string): string => path.join(tmp.dir, `${label}-${counter++}`);

async function logits(modelPath: string, ids = PROMPT): Promise<Float32Array> {
  const d = await openDecoder(modelPath, { threads: 1 });
  try {
    return (await d.forward(ids)).logits;
  } finally {
    await d.release();
  }
}

function nodesOf(op: string, nodes: NodeProto[]): NodeProto[] {
  return nodes.filter((n) => n.opType === op);
}

/** Relative L2 error ‖a − b‖ / ‖b‖ and top-1 agreement per position. */
function compare(a: Float32Array, b: Float32Array, vocab: number): { relL2: number; top1: number } {
  let num = 0, den = 0, agree = 0;
  const rows = b.length / vocab;
  for (let r = 0; r < rows; r++) {
    let ia = 0, ib = 0;
    for (let v = 0; v < vocab; v++) {
      const i = r * vocab + v;
      num += (a[i] - b[i]) ** 2; den += b[i] ** 2;
      if (a[i] > a[r * vocab + ia]) ia = v;
      if (b[i] > b[r * vocab + ib]) ib = v;
    }
    if (ia === ib) agree++;
  }
  return { relL2: Math.sqrt(num / den), top1: agree / rows };
}

describe('stories260K', () => {
  let reference: Float32Array;
  beforeAll(async () => { reference = await logits(STORIES.model); });

  const cases: { label: string; s: Partial<QuantizeRtnStep>; maxRelL2: number }[] = [
    { label: 'int8 asym', s: { bits: 8, blockSize: 32 }, maxRelL2: 0.03 },
    { label: 'int4 sym', s: { bits: 4, blockSize: 32, symmetric: true }, maxRelL2: 0.3 },
    { label: 'int4 asym', s: { bits: 4, blockSize: 32 }, maxRelL2: 0.3 },
    { label: '2-bit asym', s: { bits: 2, blockSize: 32 }, maxRelL2: 1 },
  ];
  for (const c of cases) {
    it(`${c.label}: loads and runs, MatMulNBits with the right attributes, partial blocks handled`, async () => {
      const out = outDir('stories');
      const r = await quantizeWeightOnly(STORIES.model, step(c.s), out, quietContext(tmp.dir));
      expect(r.outDir).toBe(out);
      expect(existsSync(path.join(out, 'model.onnx'))).toBe(true);
      expect(existsSync(path.join(out, 'tokenizer.json'))).toBe(true);
      expect(readdirSync(tmp.dir).filter((f) => f.includes('.partial-'))).toEqual([]);

      const m = await readModel(r.modelPath);
      const g = m.proto.graph!;
      const nbits = nodesOf('MatMulNBits', g.node);
      expect(nbits.length).toBe(r.quantized.length);
      expect(nodesOf('MatMul', g.node).filter((n) => initializerMap(g).has(n.input[1]))).toEqual([]);
      expect(m.proto.opsetImport.find((o) => o.domain === 'com.microsoft')?.version).toBe(1);
      const inits = initializerMap(g);
      const bits = c.s.bits!;
      for (const n of nbits) {
        expect(n.domain).toBe('com.microsoft');
        expect(attrInt(n, 'bits', 0)).toBe(bits);
        expect(attrInt(n, 'block_size', 0)).toBe(32);
        expect(attrInt(n, 'accuracy_level', -1)).toBe(4);
        const K = attrInt(n, 'K', 0), N = attrInt(n, 'N', 0);
        const kBlocks = Math.ceil(K / 32);
        expect(inits.get(n.input[1])!.dims.map(Number)).toEqual([N, kBlocks, (32 * bits) / 8]);
        expect(inits.get(n.input[2])!.dims.map(Number)).toEqual([N, kBlocks]);
        expect(n.input.length).toBe(c.s.symmetric ? 3 : 4);
        expect(n.input[1]).toMatch(new RegExp(`_Q${bits}$`));
      }
      // hidden_dim 172 is not a multiple of 32: the down projection (K = 172) is quantized with a padded block
      expect(nbits.some((n) => attrInt(n, 'K', 0) === 172)).toBe(true);
      // the tied classifier / embeddings stay in float, with a reason
      expect(r.skipped.length).toBeGreaterThan(0);
      for (const s of r.skipped) expect(s.reason.length).toBeGreaterThan(10);

      const q = await logits(r.modelPath);
      expect(q.every(Number.isFinite)).toBe(true);
      const cmp = compare(q, reference, 512);
      expect(cmp.relL2).toBeLessThan(c.maxRelL2);
      console.log(`${c.label}: relative L2 of logits ${cmp.relL2.toFixed(4)}, top-1 agreement ${cmp.top1}`);
      if (bits === 8) expect(cmp.top1).toBeGreaterThanOrEqual(0.75);

      const manifest = await readManifest(out);
      expect(manifest.weights.filter((w) => w.status === 'quantized').length).toBe(r.quantized.length);
      expect(manifest.weights.filter((w) => w.status === 'skipped').every((w) => w.reason)).toBe(true);
      expect(manifest.source.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(manifest.output.files.map((f) => f.name)).toContain('model.onnx');
    });
  }

  it('the QDQ format runs and matches the MatMulNBits output', async () => {
    const a = await quantizeWeightOnly(STORIES.model, step({ bits: 4, accuracyLevel: 0 }), outDir('qdq-ref'), quietContext(tmp.dir));
    const b = await quantizeWeightOnly(STORIES.model, step({ bits: 4, accuracyLevel: 0, format: 'qdq' }), outDir('qdq'), quietContext(tmp.dir));
    const m = await readModel(b.modelPath);
    expect(nodesOf('DequantizeLinear', m.proto.graph!.node).length).toBe(a.quantized.length);
    expect(nodesOf('MatMulNBits', m.proto.graph!.node)).toEqual([]);
    expect(m.proto.opsetImport.find((o) => !o.domain)?.version).toBe(21);
    const la = await logits(a.modelPath);
    const lb = await logits(b.modelPath);
    // onnxruntime fuses DQ(int4) + MatMul into MatMulNBits; at the default optimisation level the fused
    // kernel uses int8 activations, so allow that error here (the exact check is in quantize-numerics).
    expect(compare(lb, la, 512).relL2).toBeLessThan(0.02);
  });

  it('keep patterns are respected', async () => {
    const all = await quantizeWeightOnly(STORIES.model, step({}), outDir('all'), quietContext(tmp.dir));
    const pattern = all.quantized[0].name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const r = await quantizeWeightOnly(STORIES.model, step({ keep: [`^${pattern}$`] }), outDir('keep'), quietContext(tmp.dir));
    expect(r.quantized.length).toBe(all.quantized.length - 1);
    expect(r.skipped.find((s) => s.name === all.quantized[0].name)?.reason).toMatch(/keep pattern/);
  });

  it('a bad keep pattern is an INVALID_INPUT error', async () => {
    const e = await quantizeWeightOnly(STORIES.model, step({ keep: ['('] }), outDir('bad'), quietContext(tmp.dir)).catch((x) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/keep pattern '\(' is not a valid regular expression/);
  });

  it('cancelling after the first progress event leaves no output folder', async () => {
    const out = outDir('cancel');
    const ac = new AbortController();
    const events: Progress[] = [];
    const ctx = { ...quietContext(tmp.dir, ac.signal), progress: (p: Progress) => { events.push(p); ac.abort(); } };
    const e = await quantizeWeightOnly(STORIES.model, step({}), out, ctx).catch((x) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect(e.code).toBe('CANCELLED');
    expect(events.length).toBe(1);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith(path.basename(out)))).toEqual([]);
  });

  it('refuses to write into a non-empty folder', async () => {
    const out = outDir('taken');
    await quantizeWeightOnly(STORIES.model, step({}), out, quietContext(tmp.dir));
    const e = await quantizeWeightOnly(STORIES.model, step({}), out, quietContext(tmp.dir)).catch((x) => x);
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/already exists and is not empty/);
  });

  it('an already quantized output has nothing left to quantize (pinned message)', async () => {
    const first = await quantizeWeightOnly(STORIES.model, step({}), outDir('first'), quietContext(tmp.dir));
    const e = await quantizeWeightOnly(first.modelPath, step({}), outDir('second'), quietContext(tmp.dir)).catch((x) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(new RegExp(`^Nothing to quantize: ${first.quantized.length} node\\(s\\) are already quantized; `));
  });

  it('updateManifest merges metrics into whittle.json', async () => {
    const recipe: RecipeInput = { model: { path: STORIES.model }, steps: [{ type: 'quantize', method: 'rtn' }] };
    const r = await quantizeWeightOnly(STORIES.model, step({}), outDir('manifest'), quietContext(tmp.dir), { recipe: recipe as never });
    await updateManifest(r.outDir, { metrics: { perplexity: 4.3 } });
    await updateManifest(r.outDir, { metrics: { decode_tokens_per_s: 900 } });
    const m = JSON.parse(readFileSync(path.join(r.outDir, 'whittle.json'), 'utf8'));
    expect(m.metrics).toEqual({ perplexity: 4.3, decode_tokens_per_s: 900 });
    expect(m.recipe).toEqual(recipe);
    expect(m.step).toMatchObject({ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 });
  });
});

describe('fixture decoders', () => {
  it('tiny GPT-2 with contrib ops: MatMul/Gemm weights quantize, Attention weights are skipped with a reason', async () => {
    const reference = await logits(GPT2, [5, 6, 7, 8]);
    const r = await quantizeWeightOnly(GPT2, step({ bits: 8, blockSize: 16 }), outDir('gpt2'), quietContext(tmp.dir));
    expect(r.quantized.length).toBeGreaterThan(0);
    expect(r.skipped.some((s) => /Attention/.test(s.reason))).toBe(true);
    const cfg = JSON.parse(readFileSync(path.join(r.outDir, 'genai_config.json'), 'utf8'));
    expect(cfg.model.decoder.filename).toBe('model.onnx');
    for (const f of ['tokenizer.json', 'vocab.json', 'config.json']) expect(existsSync(path.join(r.outDir, f))).toBe(true);
    const q = await logits(r.modelPath, [5, 6, 7, 8]);
    expect(q.every(Number.isFinite)).toBe(true);
    expect(compare(q, reference, reference.length / 4).relL2).toBeLessThan(0.05);
  });

  it('tiny Llama fp16 with external data: fp16 scales, runs', async () => {
    const reference = await logits(LLAMA16, [5, 6, 7, 8]);
    const r = await quantizeWeightOnly(LLAMA16, step({ bits: 4, blockSize: 16 }), outDir('llama16'), quietContext(tmp.dir));
    expect(r.quantized.length).toBeGreaterThan(0);
    const m = await readModel(r.modelPath);
    const inits = initializerMap(m.proto.graph!);
    for (const n of nodesOf('MatMulNBits', m.proto.graph!.node)) expect(inits.get(n.input[2])!.dataType).toBe(10); // float16
    expect(existsSync(path.join(r.outDir, 'genai_config.json'))).toBe(true);
    const q = await logits(r.modelPath, [5, 6, 7, 8]);
    expect(q.every(Number.isFinite)).toBe(true);
    expect(compare(q, reference, reference.length / 4).relL2).toBeLessThan(0.5);
  });

  it('a weight-free model: Nothing to quantize (pinned message)', async () => {
    const out = outDir('softmax');
    const e = await quantizeWeightOnly(SOFTMAX, step({}), out, quietContext(tmp.dir)).catch((x) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toBe('Nothing to quantize: the model has no MatMul or Gemm with a constant float weight.');
    expect(existsSync(out)).toBe(false);
  });
});
