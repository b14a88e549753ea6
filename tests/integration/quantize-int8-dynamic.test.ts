/**
 * INT8 dynamic quantization on real onnxruntime sessions: a random layer against the float MatMul/Gemm
 * in both formats, stories260K's perplexity through the recipe runner, the fixture decoders (contrib ops,
 * float16 activations), skips and keep patterns, an already quantized model, and cancellation.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WhittleError } from '../../main/engine/errors.ts';
import { openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { quietContext, type Progress } from '../../main/engine/job-context.ts';
import { initializerMap } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { quantizeInt8Dynamic } from '../../main/engine/quantize/int8-dynamic.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { runRecipe } from '../../main/engine/pipeline/runner.ts';
import { QuantizeInt8DynamicStep, Recipe } from '../../preload/recipe.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';
import { buildModel, DataType, floatAttr, intAttr, makeNode, makeTensor, randomFloats, saveModel, singleMatMul, valueInfo } from '../unit/quantize/build-model.ts';

const GPT2 = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx');
const LLAMA16 = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx');
const PROMPT = [1, 403, 407, 261, 378, 395, 275, 285];
const F = DataType.float32;
const FORMATS = ['matmulinteger', 'dynamic-quantize-matmul'] as const;

const step = (s: Partial<QuantizeInt8DynamicStep> = {}): QuantizeInt8DynamicStep =>
  QuantizeInt8DynamicStep.parse({ type: 'quantize', method: 'int8-dynamic', ...s });

let tmp: ReturnType<typeof tempDir>;
beforeAll(() => { tmp = tempDir('whittle-int8dyn-'); });
afterAll(() => tmp.cleanup());
let counter = 0;
const outDir = (label: string): string => path.join(tmp.dir, `${label}-${counter++}`);

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
  return Math.sqrt(num / den);
}

async function runY(modelPath: string, x: Float32Array, dims: number[]): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
  try {
    return (await s.run({ X: new ort.Tensor('float32', x, dims) })).Y.data as Float32Array;
  } finally {
    await s.release();
  }
}

async function logits(modelPath: string, ids = PROMPT): Promise<Float32Array> {
  const d = await openDecoder(modelPath, { threads: 1 });
  try {
    return (await d.forward(ids)).logits;
  } finally {
    await d.release();
  }
}

describe('a random layer against the float product (onnxruntime both sides)', () => {
  // X [16, 64] · W [64, 128]: relative L2 error of Y below 2 % (measured ≈ 0.6–0.8 %).
  const K = 64, N = 128, M = 16;
  const W = randomFloats(K * N, 5, 0.2);
  const X = randomFloats(M * K, 6, 1);

  for (const format of FORMATS) {
    for (const perChannel of [true, false]) {
      it(`MatMul, ${format}, ${perChannel ? 'per channel' : 'per tensor'}`, async () => {
        const src = path.join(tmp.dir, `layer-${format}-${perChannel}.onnx`);
        await saveModel(singleMatMul(W, K, N), src);
        const r = await quantizeInt8Dynamic(src, step({ format, perChannel }), outDir('layer'), quietContext(tmp.dir));
        expect(r.quantized.map((w) => w.name)).toEqual(['W']);
        const g = (await readModel(r.modelPath)).proto.graph!;
        const inits = initializerMap(g);
        expect(inits.get('W_Q8')!.dataType).toBe(DataType.int8);
        expect(inits.get('W_Q8')!.dims.map(Number)).toEqual([K, N]);
        expect(inits.get('W_scales')!.dims.map(Number)).toEqual(perChannel ? [N] : []);
        expect(inits.has('W')).toBe(false);
        expect(g.node.map((n) => n.opType)).toEqual(format === 'matmulinteger' ? ['DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Mul'] : ['DynamicQuantizeMatMul']);

        const want = await runY(src, X, [M, K]);
        const got = await runY(r.modelPath, X, [M, K]);
        const err = relL2(got, want);
        console.log(`${format} ${perChannel ? 'per-channel' : 'per-tensor'}: relative L2 error ${(100 * err).toFixed(3)} %`);
        expect(err).toBeLessThan(0.02);
        expect(err).toBeGreaterThan(0); // it really is quantized
      });
    }
  }

  it('Gemm with transB, alpha, beta and a bias, in both formats', async () => {
    const model = buildModel({
      nodes: [makeNode({ opType: 'Gemm', inputs: ['X', 'Wt', 'C'], outputs: ['Y'], name: 'gemm', attributes: [intAttr('transB', 1), floatAttr('alpha', 0.5), floatAttr('beta', 2)] })],
      initializers: [makeTensor('Wt', F, [N, K], W), makeTensor('C', F, [N], randomFloats(N, 9, 1))],
      inputs: [valueInfo('X', F, [M, K])],
      outputs: [valueInfo('Y', F, [M, N])],
    });
    const src = path.join(tmp.dir, 'gemm.onnx');
    await saveModel(model, src);
    const want = await runY(src, X, [M, K]);
    for (const format of FORMATS) {
      const r = await quantizeInt8Dynamic(src, step({ format }), outDir('gemm'), quietContext(tmp.dir));
      expect(r.quantized.map((w) => w.shape)).toEqual([[N, K]]);
      const err = relL2(await runY(r.modelPath, X, [M, K]), want);
      console.log(`Gemm ${format}: relative L2 error ${(100 * err).toFixed(3)} %`);
      expect(err).toBeLessThan(0.02);
    }
  });
});

describe('stories260K', () => {
  it('through the recipe runner: perplexity within 2 % of float32', async () => {
    const out = outDir('stories');
    const recipe = Recipe.parse({
      model: { path: STORIES.model },
      tokenizer: { path: STORIES.tokenizer },
      steps: [{ type: 'quantize', method: 'int8-dynamic' }],
      evaluation: { perplexity: { text: STORIES.text, protocol: 'documents', window: 256, maxSamples: 400 }, footprint: true },
      output: { dir: out },
    });
    const r = await runRecipe(recipe, quietContext(tmp.dir));
    const metric = (name: string, subject: string) => r.metrics.find((m) => m.name === name && m.subject === subject)!.value;
    const original = metric('perplexity', 'original');
    const result = metric('perplexity', 'result');
    console.log(`stories260K perplexity: float32 ${original.toFixed(6)}, int8 dynamic ${result.toFixed(6)} (+${((100 * (result - original)) / original).toFixed(3)} %)`);
    expect(Math.abs(original - 4.226658)).toBeLessThan(1e-5);
    expect(Math.abs(result - original) / original).toBeLessThan(0.02);

    const details = (r.details.steps as Record<string, unknown>[])[0];
    expect(details).toMatchObject({ method: 'int8-dynamic', format: 'matmulinteger', perChannel: true, quantized: 35 });
    const skipped = details.skipped as { name: string; reason: string }[];
    expect(skipped.find((s) => s.name === 'model.embed_tokens.weight')?.reason).toMatch(/embeddings stay in float/);
    const manifest = await readManifest(out);
    expect(manifest.weights.filter((w) => w.status === 'quantized').every((w) => w.bits === 8)).toBe(true);
    expect(manifest.int8Dynamic).toEqual({ format: 'matmulinteger', perChannel: true, activationCasts: 0 });
  });

  it('both formats give the same logits (onnxruntime fuses the MatMulInteger pattern)', async () => {
    const a = await quantizeInt8Dynamic(STORIES.model, step(), outDir('mmi'), quietContext(tmp.dir));
    const b = await quantizeInt8Dynamic(STORIES.model, step({ format: 'dynamic-quantize-matmul' }), outDir('dqmm'), quietContext(tmp.dir));
    const m = await readModel(b.modelPath);
    expect(m.proto.graph!.node.filter((n) => n.opType === 'DynamicQuantizeMatMul').length).toBe(35);
    expect(m.proto.opsetImport.find((o) => o.domain === 'com.microsoft')?.version).toBe(1);
    const la = await logits(a.modelPath);
    expect(relL2(await logits(b.modelPath), la)).toBeLessThan(1e-3);
    expect(relL2(la, await logits(STORIES.model))).toBeLessThan(0.1);
    // q, k and v read the same normalised activation: one DynamicQuantizeLinear per activation.
    const dql = (await readModel(a.modelPath)).proto.graph!.node.filter((n) => n.opType === 'DynamicQuantizeLinear');
    // Per layer: the q/k/v input, o_proj's, the gate/up input, down_proj's (the tied LM head stays float).
    expect(dql.length).toBe(5 * 4);
  });

  it('keep patterns, an already quantized model, cancellation', async () => {
    const kept = await quantizeInt8Dynamic(STORIES.model, step({ keep: ['mlp'] }), outDir('keep'), quietContext(tmp.dir));
    expect(kept.quantized.length).toBe(35 - 15);
    expect(kept.skipped.filter((s) => /keep pattern \(\/mlp\/\)/.test(s.reason)).length).toBe(15);

    // A second pass without the pattern quantizes what was kept; a third has nothing left to do.
    const rest = await quantizeInt8Dynamic(kept.modelPath, step(), outDir('rest'), quietContext(tmp.dir));
    expect(rest.quantized.length).toBe(15);
    expect(relL2(await logits(rest.modelPath), await logits(STORIES.model))).toBeLessThan(0.1);
    const again = await quantizeInt8Dynamic(rest.modelPath, step(), outDir('again'), quietContext(tmp.dir)).catch((x) => x);
    expect(again).toBeInstanceOf(WhittleError);
    expect(again.code).toBe('INVALID_INPUT');
    expect(again.message).toMatch(/^Nothing to quantize: 35 node\(s\) are already quantized; /);

    const out = outDir('cancel');
    const ac = new AbortController();
    const events: Progress[] = [];
    const ctx = { ...quietContext(tmp.dir, ac.signal), progress: (p: Progress) => { events.push(p); if (p.done === 3) ac.abort(); } };
    const e = await quantizeInt8Dynamic(STORIES.model, step(), out, ctx).catch((x) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect(e.code).toBe('CANCELLED');
    expect(events.at(-1)!.done).toBe(3);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith(path.basename(out)))).toEqual([]);
  });
});

describe('fixture decoders', () => {
  for (const format of FORMATS) {
    it(`tiny GPT-2, ${format}: MatMuls quantized, fused Attention weights skipped with a reason`, async () => {
      const ids = [5, 6, 7, 8];
      const r = await quantizeInt8Dynamic(GPT2, step({ format }), outDir('gpt2'), quietContext(tmp.dir));
      expect(r.quantized.length).toBe(16);
      expect(r.skipped.filter((s) => /fused com\.microsoft\.Attention QKV weight/.test(s.reason)).length).toBe(5);
      const err = relL2(await logits(r.modelPath, ids), await logits(GPT2, ids));
      console.log(`tiny GPT-2 ${format}: relative L2 of logits ${err.toExponential(2)}`);
      expect(err).toBeLessThan(0.05);
    });

    it(`float16 LLaMA, ${format}: activations cast to float32 for the quantizer and back`, async () => {
      const ids = [1, 2, 3, 4];
      const r = await quantizeInt8Dynamic(LLAMA16, step({ format }), outDir('llama16'), quietContext(tmp.dir));
      expect(r.quantized.length).toBe(15);
      expect(r.activationCasts).toBeGreaterThan(0);
      const g = (await readModel(r.modelPath)).proto.graph!;
      expect(g.input.filter((v) => v.name?.startsWith('past')).every((v) => v.type!.tensorType!.elemType === DataType.float16)).toBe(true);
      const err = relL2(await logits(r.modelPath, ids), await logits(LLAMA16, ids));
      console.log(`float16 LLaMA ${format}: relative L2 of logits ${err.toExponential(2)}`);
      expect(err).toBeLessThan(0.05);
    });
  }
});
