/**
 * GGUF export of stories260K, read back by llama.cpp (node-llama-cpp's prebuilt CPU binary):
 *   - the F32 file generates the same greedy tokens as onnxruntime on the ONNX model;
 *   - a 4-bit block-32 asymmetric GPTQ result exported as Q4_1 dequantizes to exactly the MatMulNBits
 *     weights (up to the f16 rounding of d and m), and its llama.cpp perplexity is within 1 % of
 *     onnxruntime's on the GPTQ model, over the same samples;
 *   - the Q8_0 / Q4_0 / Q4_1 files of the float model load and stay close to the float perplexity.
 * The llama.cpp parts are skipped, with the reason, where node-llama-cpp cannot load.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer, type TextTokenizer } from '../../main/engine/data/tokenizer.ts';
import { WhittleError } from '../../main/engine/errors.ts';
import { openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { generate } from '../../main/engine/evaluate/generate.ts';
import { evaluatePerplexity, perplexitySamples } from '../../main/engine/evaluate/perplexity.ts';
import { evaluateGguf } from '../../main/engine/interop/gguf-evaluate.ts';
import { exportGguf } from '../../main/engine/interop/gguf-export.ts';
import { importHuggingFace } from '../../main/engine/interop/import-hf.ts';
import { planLlama, readNBits } from '../../main/engine/interop/gguf-llama.ts';
import { decodeRows, dequantizeNBitsRows } from '../../main/engine/interop/gguf-quant.ts';
import { readGguf, readGgufTensor } from '../../main/engine/interop/gguf-reader.ts';
import { GgmlType } from '../../main/engine/interop/gguf-writer.ts';
import { ggufPerplexity, llamaCppUnavailable, openGguf } from '../../main/engine/interop/llama-cpp.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { floatToHalf, halfToFloat, readTensorFloat32 } from '../../main/engine/onnx/tensor-data.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { quantizeGptq } from '../../main/engine/quantize/gptq.ts';
import { QuantizeGptqStep } from '../../preload/recipe.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';
import { readLlama2c, writeHfFolder } from '../helpers/llama2c-hf.ts';
import { calibrationTextFromEnd } from './quantize-gptq-helpers.ts';

const unavailable = await llamaCppUnavailable();
if (unavailable) console.warn(`llama.cpp tests skipped: ${unavailable}`);
const withLlama = unavailable ? it.skip : it;

/** The perplexity protocol, on the first 40 paragraphs (the same samples for both runtimes). */
const PROTOCOL = { protocol: 'documents' as const, window: 256, maxSamples: 40, minTokens: 16 };

let tmp: ReturnType<typeof tempDir>;
let tokenizer: TextTokenizer;
let text: string;
let gptqModel: string;
beforeAll(async () => {
  tmp = tempDir('whittle-gguf-');
  tokenizer = await loadTokenizer(STORIES.tokenizer);
  text = readFileSync(STORIES.text, 'utf8');
  const step = QuantizeGptqStep.parse({
    type: 'quantize', method: 'gptq', bits: 4, blockSize: 32, symmetric: false,
    calibration: { text: calibrationTextFromEnd(tmp.dir), samples: 16, length: 128, seed: 0 },
  });
  const g = await quantizeGptq(STORIES.model, step, path.join(tmp.dir, 'gptq'), quietContext(tmp.dir), { tokenizerPath: STORIES.tokenizer });
  gptqModel = path.join(g.outDir, 'model.onnx');
}, 120_000);
afterAll(() => tmp.cleanup());

async function onnxPerplexity(model: string): Promise<number> {
  const d = await openDecoder(model);
  try {
    return (await evaluatePerplexity(d, tokenizer, text, PROTOCOL, quietContext(tmp.dir))).perplexity;
  } finally {
    await d.release();
  }
}

async function llamaPerplexity(gguf: string): Promise<number> {
  const runner = await openGguf(gguf, { threads: 2 });
  try {
    return (await ggufPerplexity(runner, perplexitySamples(text, tokenizer, PROTOCOL).samples)).perplexity;
  } finally {
    await runner.release();
  }
}

describe('GGUF export of stories260K', () => {
  it('F32: header, metadata and tensors as llama.cpp names them; the float weights are the ONNX ones', async () => {
    const out = path.join(tmp.dir, 'f32.gguf');
    const r = await exportGguf(STORIES.model, out, { type: 'f32' });
    expect(statSync(out).size).toBe(r.bytes);
    const g = await readGguf(out);
    expect(g.version).toBe(3);
    expect(g.metadata.get('general.architecture')).toBe('llama');
    expect(g.metadata.get('llama.block_count')).toBe(5);
    expect(g.metadata.get('llama.embedding_length')).toBe(64);
    expect(g.metadata.get('llama.feed_forward_length')).toBe(172);
    expect(g.metadata.get('llama.attention.head_count')).toBe(8);
    expect(g.metadata.get('llama.attention.head_count_kv')).toBe(4);
    expect(g.metadata.get('llama.rope.dimension_count')).toBe(8);
    expect(g.metadata.get('llama.context_length')).toBe(512); // the rotary table's length
    expect(g.metadata.get('llama.rope.freq_base') as number).toBeCloseTo(10000, 0);
    expect(g.metadata.get('llama.attention.layer_norm_rms_epsilon') as number).toBeCloseTo(1e-5, 9);
    expect(g.metadata.get('tokenizer.ggml.model')).toBe('llama');
    expect((g.metadata.get('tokenizer.ggml.tokens') as string[]).length).toBe(512);
    expect(g.metadata.get('tokenizer.ggml.bos_token_id')).toBe(1);
    expect(g.metadata.get('tokenizer.ggml.eos_token_id')).toBe(2);
    expect((g.metadata.get('tokenizer.ggml.token_type') as number[])[3]).toBe(6); // <0x00> is a byte piece
    const names = g.tensors.map((t) => t.name);
    expect(names).toContain('blk.4.ffn_down.weight');
    expect(names).not.toContain('output.weight'); // tied to token_embd
    for (const t of g.tensors) expect(t.position % 32).toBe(0);
    const down = g.tensors.find((t) => t.name === 'blk.0.ffn_down.weight')!;
    expect(down.dims).toEqual([172, 64]); // ne0 = K (in), ne1 = N (out)
    // ONNX stores down_proj transposed, [K = 172, N = 64]: GGUF row n holds column n.
    const model = await readModel(STORIES.model);
    const w = model.proto.graph!.initializer.find((t) => t.name === 'model.layers.0.mlp.down_proj.weight_t')!;
    const src = await readTensorFloat32(w);
    const got = decodeRows(await readGgufTensor(g, down.name), 172 * 64, GgmlType.F32);
    for (const [n, k] of [[0, 0], [5, 171], [63, 100]]) expect(got[n * 172 + k]).toBe(src[k * 64 + n]);
  });

  withLlama('F32 in llama.cpp generates the same greedy text as onnxruntime, and scores the same perplexity', async () => {
    const out = path.join(tmp.dir, 'gen.gguf');
    await exportGguf(STORIES.model, out, { type: 'f32' });
    const prompts = ['Once upon a time', 'The little dog'];
    const protocol = { ...PROTOCOL, maxSamples: 8 };
    const ll = await evaluateGguf(out, tokenizer, text, { protocol, prompts, maxNewTokens: 48, threads: 2 });
    const d = await openDecoder(STORIES.model);
    try {
      for (const [i, prompt] of prompts.entries()) {
        const ort = await generate(d, tokenizer, prompt, 48);
        expect(ll.generations[i].newTokens).toEqual(ort.newTokens);
        expect(ll.generations[i].completion).toBe(ort.completion);
      }
      const ort = await evaluatePerplexity(d, tokenizer, text, protocol, quietContext(tmp.dir));
      expect(ll.perplexity.predictedTokens).toBe(ort.predictedTokens);
      expect(Math.abs(ll.perplexity.perplexity / ort.perplexity - 1)).toBeLessThan(1e-3);
      expect(ll.tokensPerSecond).toBeGreaterThan(0);
    } finally {
      await d.release();
    }
  }, 60_000);

  withLlama('an imported Hugging Face folder (rotate-half q/k rows) exports so that llama.cpp generates like the original', async () => {
    // stories260K written the way Transformers' conversion does (q/k rows permuted to halves), imported,
    // exported: the q/k rows must be regrouped back into pairs for llama.cpp's rotary.
    const hf = path.join(tmp.dir, 'hf');
    await writeHfFolder(hf, readLlama2c());
    const imported = await importHuggingFace(hf, path.join(tmp.dir, 'imported'));
    const plan = await planLlama(await readModel(imported.modelPath));
    expect(plan.hp.rotaryHalves).toBe(true);
    expect(plan.hp.sources.ropeFreqBase).toBe('config.json');
    const out = path.join(tmp.dir, 'imported.gguf');
    await exportGguf(path.dirname(imported.modelPath), out, { type: 'f32' });
    const ll = await evaluateGguf(out, tokenizer, text, { protocol: { ...PROTOCOL, maxSamples: 4 }, prompts: ['Once upon a time'], maxNewTokens: 48, threads: 2 });
    const d = await openDecoder(STORIES.model);
    try {
      expect(ll.generations[0].newTokens).toEqual((await generate(d, tokenizer, 'Once upon a time', 48)).newTokens);
    } finally {
      await d.release();
    }
  }, 60_000);

  it('GPTQ → Q4_1 dequantizes to the MatMulNBits weights (f16 rounding of d and m aside)', async () => {
    const out = path.join(tmp.dir, 'gptq-q4_1.gguf');
    const r = await exportGguf(gptqModel, out, { type: 'q4_1', tokenizerPath: STORIES.tokenizer });
    expect(r.exactFromNBits).toBe(true);
    const g = await readGguf(out);
    const plan = await planLlama(await readModel(gptqModel));
    let checked = 0;
    for (const t of plan.tensors) {
      if (t.source.kind !== 'nbits') continue;
      const info = g.tensors.find((x) => x.name === t.name)!;
      const w = await readNBits(t.source.node, t.source.inits);
      const want = dequantizeNBitsRows(w);
      const got = decodeRows(await readGgufTensor(g, t.name), w.k * w.n, info.type);
      if (w.k % 32 !== 0) {
        expect(info.type).toBe(GgmlType.F32); // ffn_down (K = 172): written dequantized
        expect(got).toEqual(want);
        continue;
      }
      expect(info.type).toBe(GgmlType.Q4_1);
      // x = d·q + m with d = f16(s), m = f16(−s·z): the bound is the f16 rounding of both.
      let worst = 0;
      for (let n = 0; n < w.n; n++) {
        for (let b = 0; b < w.k / 32; b++) {
          const s = w.scales[n * (w.k / 32) + b];
          const bound = Math.abs(halfToFloat(floatToHalf(s)) - s) * 15 + Math.abs(s) * 16 * 2 ** -11 + 1e-12;
          for (let j = 0; j < 32; j++) {
            const i = n * w.k + b * 32 + j;
            worst = Math.max(worst, Math.abs(got[i] - want[i]) / bound);
          }
        }
      }
      expect(worst).toBeLessThanOrEqual(1);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(20);
    expect(r.tensorTypes['token_embd.weight']).toBe('F32'); // float weights stay as stored
  }, 60_000);

  withLlama('GPTQ → Q4_1: llama.cpp perplexity within 1 % of onnxruntime on the GPTQ model', async () => {
    const out = path.join(tmp.dir, 'gptq-ppl.gguf');
    await exportGguf(gptqModel, out, { type: 'q4_1', tokenizerPath: STORIES.tokenizer });
    const ort = await onnxPerplexity(gptqModel);
    const ll = await llamaPerplexity(out);
    expect(Math.abs(ll / ort - 1)).toBeLessThan(0.01);
  }, 120_000);

  withLlama('float model as Q8_0, Q4_0 and Q4_1: each loads in llama.cpp, Q8_0 within 1 % of float, 4-bit within 15 %', async () => {
    const fp = await onnxPerplexity(STORIES.model);
    const byType: Record<string, number> = {};
    for (const type of ['q8_0', 'q4_0', 'q4_1'] as const) {
      const out = path.join(tmp.dir, `${type}.gguf`);
      const r = await exportGguf(STORIES.model, out, { type });
      expect(r.notes.some((n) => n.includes('ffn_down') && n.includes('F16'))).toBe(true);
      byType[type] = await llamaPerplexity(out);
    }
    expect(Math.abs(byType.q8_0 / fp - 1)).toBeLessThan(0.01);
    expect(byType.q4_0 / fp).toBeLessThan(1.15);
    expect(byType.q4_1 / fp).toBeLessThan(1.15);
    expect(byType.q4_0).toBeGreaterThan(byType.q8_0);
  }, 120_000);

  it('a GPTQ model cannot be re-quantized to another type; the message names the allowed ones', async () => {
    const out = path.join(tmp.dir, 'bad.gguf');
    const err = await exportGguf(gptqModel, out, { type: 'q8_0', tokenizerPath: STORIES.tokenizer }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WhittleError);
    expect((err as WhittleError).message).toMatch(/q4_1.*f32\/f16/);
    expect(() => statSync(out)).toThrow();
  });
});
