/**
 * INT8 static (QDQ) on real models: calibrated activation ranges, int8 per-channel weights, the output
 * loads and runs in onnxruntime-node, and stories260K's perplexity stays within 2 % of fp32.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleCalibration } from '../../main/engine/calibrate/index.ts';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { WhittleError } from '../../main/engine/errors.ts';
import { openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { quietContext, type Progress } from '../../main/engine/job-context.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { attrInt, initializerMap } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { readTensorBytes } from '../../main/engine/onnx/tensor-data.ts';
import { quantizeInt8Static } from '../../main/engine/quantize/int8-static.ts';
import { readManifest } from '../../main/engine/rewrite/manifest.ts';
import { measureKl } from '../../main/engine/quantize/sensitivity.ts';
import { QuantizeInt8StaticStep } from '../../preload/recipe.ts';
import { fixture, STORIES, tempDir } from '../helpers/fixtures.ts';
import { calibrationTextFromEnd, FP32_PERPLEXITY, storiesPerplexity } from './quantize-gptq-helpers.ts';

const GPT2 = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx');
const LLAMA16 = fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx');

let tmp: ReturnType<typeof tempDir>;
let calibText: string;
let counter = 0;
beforeAll(() => {
  tmp = tempDir('whittle-int8s-');
  calibText = calibrationTextFromEnd(tmp.dir);
});
afterAll(() => tmp.cleanup());
const outDir = (label: string): string => path.join(tmp.dir, `${label}-${counter++}`);
const step = (s: Partial<QuantizeInt8StaticStep> = {}): QuantizeInt8StaticStep => QuantizeInt8StaticStep.parse({
  type: 'quantize', method: 'int8-static', calibration: { text: calibText, samples: 16, length: 128 }, ...s,
});

/** Sequences from the calibration text drawn with another seed than the calibration's. */
async function heldOut(): Promise<number[][]> {
  return sampleCalibration(readFileSync(calibText, 'utf8'), await loadTokenizer(STORIES.tokenizer), { samples: 8, length: 128, seed: 99 });
}

describe('stories260K', () => {
  it('minmax uint8 / per-channel int8: QDQ around every weight MatMul, runs in ORT, perplexity within 2 % of fp32', async () => {
    const out = outDir('minmax');
    const phases = new Set<string>();
    const ctx = { ...quietContext(tmp.dir), progress: (p: Progress) => { phases.add(p.phase); } };
    const r = await quantizeInt8Static(STORIES.model, step(), out, ctx, { tokenizerPath: STORIES.tokenizer });
    expect(r.quantized.length).toBe(35);
    // per layer: attention norm (q, k, v), attention output (o), MLP norm (gate, up), down projection
    expect(r.activations.length).toBe(20);
    expect(r.activations.filter((a) => a.consumers.length === 3).length).toBe(5);
    for (const a of r.activations) {
      expect(a.max).toBeGreaterThan(a.min);
      expect(a.zeroPoint).toBeGreaterThanOrEqual(0);
      expect(a.zeroPoint).toBeLessThanOrEqual(255);
    }
    // the attention-score MatMuls (two activations) stay in float, listed with the reason
    expect(r.skippedNodes.filter((s) => /both inputs are activations/.test(s.reason)).length).toBe(10);
    expect([...phases]).toEqual(expect.arrayContaining(['calibrate', 'quantize']));

    const g = (await readModel(r.modelPath)).proto.graph!;
    const inits = initializerMap(g);
    const dq = g.node.filter((n) => n.opType === 'DequantizeLinear');
    const ql = g.node.filter((n) => n.opType === 'QuantizeLinear');
    expect(ql.length).toBe(20);
    expect(dq.length).toBe(20 + 35);
    for (const n of dq.filter((x) => inits.get(x.input[0])?.dataType === DataType.int8)) {
      expect(attrInt(n, 'axis', -1)).toBe(1);
      const w = inits.get(n.input[0])!;
      expect(inits.get(n.input[1])!.dims.map(Number)).toEqual([Number(w.dims[1])]);
      expect(Array.from(await readTensorBytes(inits.get(n.input[2])!)).every((b) => b === 0)).toBe(true);
    }
    expect(ql.every((n) => inits.get(n.input[2])!.dataType === DataType.uint8)).toBe(true);
    // no float weight of a quantized MatMul is left
    for (const w of r.quantized) expect(inits.has(w.name)).toBe(false);

    const ppl = await storiesPerplexity(r.modelPath, tmp.dir);
    console.log(`int8 static (minmax, uint8 activations, per-channel weights): perplexity ${ppl.toFixed(6)} vs fp32 ${FP32_PERPLEXITY} (${(100 * (ppl / FP32_PERPLEXITY - 1)).toFixed(3)} %)`);
    expect(Math.abs(ppl / FP32_PERPLEXITY - 1)).toBeLessThan(0.02);

    const manifest = await readManifest(out);
    expect(manifest.weights.filter((w) => w.status === 'quantized').every((w) => w.bits === 8)).toBe(true);
    expect((manifest.activations as unknown[]).length).toBe(20);
    expect(manifest.calibration).toMatchObject({ samples: 16, length: 128 });
  });

  for (const s of [
    { rangeMethod: 'percentile', activationType: 'int8' },
    { rangeMethod: 'entropy', activationType: 'uint8', perChannel: false },
  ] as const) {
    it(`${s.rangeMethod} ranges, ${s.activationType} activations${'perChannel' in s ? ', per-tensor weights' : ''}: runs, predictions close to the original`, async () => {
      const r = await quantizeInt8Static(STORIES.model, step(s), outDir(s.rangeMethod), quietContext(tmp.dir), { tokenizerPath: STORIES.tokenizer });
      const g = (await readModel(r.modelPath)).proto.graph!;
      const inits = initializerMap(g);
      const ql = g.node.filter((n) => n.opType === 'QuantizeLinear');
      expect(ql.every((n) => inits.get(n.input[2])!.dataType === (s.activationType === 'int8' ? DataType.int8 : DataType.uint8))).toBe(true);
      if (s.activationType === 'int8') expect(r.activations.every((a) => a.zeroPoint === 0)).toBe(true);
      if ('perChannel' in s) {
        const weightDq = g.node.filter((n) => n.opType === 'DequantizeLinear' && inits.get(n.input[0])?.dataType === DataType.int8);
        expect(weightDq.every((n) => inits.get(n.input[1])!.dims.length === 0 && attrInt(n, 'axis', -1) === -1)).toBe(true);
      }
      const { kl } = await measureKl(STORIES.model, r.modelPath, await heldOut());
      console.log(`int8 static (${s.rangeMethod}, ${s.activationType}${'perChannel' in s ? ', per-tensor' : ''}): KL(original ‖ result) ${kl.toExponential(3)} nats/token`);
      expect(kl).toBeLessThan(0.04); // uniform 4-bit RTN is about 0.1
    });
  }

  it('excluded nodes are left untouched and listed', async () => {
    const r = await quantizeInt8Static(STORIES.model, step({ exclude: ['^MatMul_88$', '^MatMul_37$'] }), outDir('exclude'), quietContext(tmp.dir), { tokenizerPath: STORIES.tokenizer });
    expect(r.quantized.length).toBe(33);
    expect(r.skippedNodes.filter((s) => /exclude pattern/.test(s.reason)).map((s) => s.name).sort()).toEqual(['MatMul_37', 'MatMul_88']);
    const g = (await readModel(r.modelPath)).proto.graph!;
    const down = g.node.find((n) => n.name === 'MatMul_88')!;
    expect(down.input).toEqual(['Mul_87_o0', 'model.layers.0.mlp.down_proj.weight_t']);
    const k = g.node.find((n) => n.name === 'MatMul_37')!;
    expect(k.input).toEqual(['Mul_24_o0', 'model.layers.0.self_attn.k_proj.weight_t']);
    // q and v still share the quantized input of layer 0
    expect(g.node.find((n) => n.name === 'MatMul_25')!.input[0]).toMatch(/_dequantized$/);
    const d = await openDecoder(r.modelPath);
    try {
      expect((await d.forward([1, 403, 407])).logits.every(Number.isFinite)).toBe(true);
    } finally {
      await d.release();
    }
  });

  it('too-short calibration text fails before any work, leaving nothing behind', async () => {
    const short = path.join(tmp.dir, 'short.txt');
    writeFileSync(short, 'Once upon a time there was a cat.\n');
    const out = outDir('short');
    const events: Progress[] = [];
    const ctx = { ...quietContext(tmp.dir), progress: (p: Progress) => { events.push(p); } };
    const e = await quantizeInt8Static(STORIES.model, step({ calibration: { text: short, samples: 16, length: 128, seed: 0 } }), out, ctx, { tokenizerPath: STORIES.tokenizer }).catch((x) => x);
    expect(e).toBeInstanceOf(WhittleError);
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/calibration text short\.txt yields about 0 sequences of 128 tokens; 16 were requested/);
    expect(events).toEqual([]);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp.dir).filter((f) => f.includes('.partial-') || f.startsWith('.calibration-'))).toEqual([]);
  });
});

describe('fixture decoders', () => {
  it('tiny GPT-2 with contrib ops: MatMul weights get QDQ, the fused Attention weight is skipped with a reason, runs', async () => {
    // The random model predicts 1000 tokens: calibrate with the stories tokenizer (512 ids), which fits.
    const r = await quantizeInt8Static(GPT2, step({ calibration: { text: calibText, samples: 4, length: 32, seed: 0 } }), outDir('gpt2'), quietContext(tmp.dir), { tokenizerPath: STORIES.tokenizer });
    expect(r.quantized.length).toBeGreaterThan(0);
    expect(r.skipped.some((s) => /Attention/.test(s.reason))).toBe(true);
    // opset 11: no per-axis DequantizeLinear, so per-tensor weight scales, said so
    expect(r.weightGranularity).toBe('per-tensor');
    expect(r.weightGranularityNote).toMatch(/opset 11 has no per-axis DequantizeLinear/);
    const d = await openDecoder(r.modelPath);
    try {
      expect((await d.forward([5, 6, 7, 8])).logits.every(Number.isFinite)).toBe(true);
    } finally {
      await d.release();
    }
  });

  it('fp16 Llama (external data): fp16 scales, opset raised for QuantizeLinear of float16, runs', async () => {
    const r = await quantizeInt8Static(LLAMA16, step({ calibration: { text: calibText, samples: 4, length: 32, seed: 0 } }), outDir('llama16'), quietContext(tmp.dir), { tokenizerPath: path.join(path.dirname(LLAMA16), 'tokenizer.json') });
    expect(r.quantized.length).toBeGreaterThan(0);
    const m = await readModel(r.modelPath);
    expect(Number(m.proto.opsetImport.find((o) => !o.domain)?.version)).toBe(21);
    const inits = initializerMap(m.proto.graph!);
    const ql = m.proto.graph!.node.filter((n) => n.opType === 'QuantizeLinear');
    expect(ql.length).toBeGreaterThan(0);
    expect(ql.every((n) => inits.get(n.input[1])!.dataType === DataType.float16)).toBe(true);
    const d = await openDecoder(r.modelPath);
    try {
      expect((await d.forward([1, 450, 4996])).logits.every(Number.isFinite)).toBe(true);
    } finally {
      await d.release();
    }
  });
});
