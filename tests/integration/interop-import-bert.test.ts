// A BERT-style encoder folder (BertForSequenceClassification names, seeded random weights) imported and
// checked against a plain float64 forward pass written from Transformers' BertModel: post-norm blocks,
// exact gelu, padding mask, pooler and classifier.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { importHuggingFace } from '../../main/engine/interop/import-hf.ts';
import { writeSafetensors } from '../../main/engine/interop/safetensors-writer.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { inspectModel } from '../../main/engine/model/inspect.ts';
import { tempDir } from '../helpers/fixtures.ts';

const tmp = tempDir('whittle-import-bert-');
afterAll(() => tmp.cleanup());
const H = 32, L = 2, NH = 4, I = 64, V = 120, POS = 64, C = 3, EPS = 1e-12;

function random(n: number, seed: number, scale: number, offset = 0): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return offset + (s / 2147483648 - 0.5) * 2 * scale;
  });
}

function weights(): Map<string, { shape: number[]; values: Float32Array }> {
  const w = new Map<string, { shape: number[]; values: Float32Array }>();
  let seed = 3;
  const put = (name: string, shape: number[], scale = 0.2, offset = 0): void => { w.set(name, { shape, values: random(shape.reduce((a, d) => a * d, 1), seed++ * 7919, scale, offset) }); };
  const ln = (name: string): void => { put(`${name}.weight`, [H], 0.2, 1); put(`${name}.bias`, [H], 0.1); };
  const lin = (name: string, out: number, inF: number): void => { put(`${name}.weight`, [out, inF]); put(`${name}.bias`, [out], 0.1); };
  put('bert.embeddings.word_embeddings.weight', [V, H], 0.5);
  put('bert.embeddings.position_embeddings.weight', [POS, H], 0.5);
  put('bert.embeddings.token_type_embeddings.weight', [2, H], 0.5);
  ln('bert.embeddings.LayerNorm');
  for (let l = 0; l < L; l++) {
    const p = `bert.encoder.layer.${l}`;
    for (const n of ['query', 'key', 'value']) lin(`${p}.attention.self.${n}`, H, H);
    lin(`${p}.attention.output.dense`, H, H);
    ln(`${p}.attention.output.LayerNorm`);
    lin(`${p}.intermediate.dense`, I, H);
    lin(`${p}.output.dense`, H, I);
    ln(`${p}.output.LayerNorm`);
  }
  lin('bert.pooler.dense', H, H);
  lin('classifier', C, H);
  return w;
}

/** last_hidden_state [S, H] and logits [C] of one sequence (float64). */
function reference(w: Map<string, { values: Float32Array }>, ids: number[], types: number[], mask: number[]): { hidden: Float64Array[]; logits: Float64Array } {
  const g = (n: string): Float32Array => w.get(n)!.values;
  const lin = (x: Float64Array, name: string, out: number): Float64Array => {
    const W = g(`${name}.weight`), b = g(`${name}.bias`);
    return Float64Array.from({ length: out }, (_, i) => { let a = b[i]; for (let j = 0; j < x.length; j++) a += W[i * x.length + j] * x[j]; return a; });
  };
  const ln = (x: Float64Array, name: string): Float64Array => {
    const mean = x.reduce((a, v) => a + v, 0) / x.length;
    const vr = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length;
    return Float64Array.from(x, (v, i) => ((v - mean) / Math.sqrt(vr + EPS)) * g(`${name}.weight`)[i] + g(`${name}.bias`)[i]);
  };
  const erf = (x: number): number => { // Taylor series: 2/√π · Σ (−1)ⁿ x^(2n+1) / (n! (2n+1))
    let sum = x, term = x;
    for (let n = 1; n < 80; n++) { term *= (-x * x) / n; sum += term / (2 * n + 1); }
    return (2 / Math.sqrt(Math.PI)) * sum;
  };
  const D = H / NH;
  let xs = ids.map((t, s) => ln(Float64Array.from({ length: H }, (_, i) => g('bert.embeddings.word_embeddings.weight')[t * H + i] + g('bert.embeddings.position_embeddings.weight')[s * H + i] + g('bert.embeddings.token_type_embeddings.weight')[types[s] * H + i]), 'bert.embeddings.LayerNorm'));
  for (let l = 0; l < L; l++) {
    const p = `bert.encoder.layer.${l}`;
    const q = xs.map((x) => lin(x, `${p}.attention.self.query`, H)), k = xs.map((x) => lin(x, `${p}.attention.self.key`, H)), v = xs.map((x) => lin(x, `${p}.attention.self.value`, H));
    xs = xs.map((x, s) => {
      const ctx = new Float64Array(H);
      for (let h = 0; h < NH; h++) {
        const keys = ids.map((_, j) => j).filter((j) => mask[j] === 1);
        const sc = keys.map((j) => { let a = 0; for (let i = 0; i < D; i++) a += q[s][h * D + i] * k[j][h * D + i]; return a / Math.sqrt(D); });
        const m = Math.max(...sc), e = sc.map((z) => Math.exp(z - m)), z = e.reduce((a, b) => a + b, 0);
        keys.forEach((j, n) => { for (let i = 0; i < D; i++) ctx[h * D + i] += (e[n] / z) * v[j][h * D + i]; });
      }
      const o = lin(ctx, `${p}.attention.output.dense`, H);
      const x1 = ln(Float64Array.from(x, (val, i) => val + o[i]), `${p}.attention.output.LayerNorm`);
      const inner = lin(x1, `${p}.intermediate.dense`, I).map((u) => 0.5 * u * (1 + erf(u / Math.SQRT2)));
      const out = lin(inner, `${p}.output.dense`, H);
      return ln(Float64Array.from(x1, (val, i) => val + out[i]), `${p}.output.LayerNorm`);
    });
  }
  const pooled = lin(xs[0], 'bert.pooler.dense', H).map(Math.tanh);
  return { hidden: xs, logits: lin(pooled, 'classifier', C) };
}

describe('import a Hugging Face BERT folder', () => {
  it('last_hidden_state and classifier logits equal a plain forward pass within 1e-4, with padding; the map sees a bert', async () => {
    const dir = path.join(tmp.dir, 'hf-bert');
    mkdirSync(dir);
    const w = weights();
    await writeSafetensors(path.join(dir, 'model.safetensors'), [...w].map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, bytes: () => new Uint8Array(t.values.buffer) })));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
      model_type: 'bert', architectures: ['BertForSequenceClassification'], hidden_size: H, num_hidden_layers: L, num_attention_heads: NH, intermediate_size: I,
      vocab_size: V, max_position_embeddings: POS, type_vocab_size: 2, layer_norm_eps: EPS, hidden_act: 'gelu', id2label: { 0: 'a', 1: 'b', 2: 'c' },
    }));
    const r = await importHuggingFace(dir, path.join(tmp.dir, 'out'));
    expect(r.modelType).toBe('bert');

    const S = 9;
    const rows = [
      { ids: [2, 17, 45, 99, 3, 8, 61, 4, 3], types: [0, 0, 0, 0, 0, 1, 1, 1, 1], mask: new Array<number>(S).fill(1) },
      { ids: [2, 5, 77, 3, 0, 0, 0, 0, 0], types: new Array<number>(S).fill(0), mask: [1, 1, 1, 1, 0, 0, 0, 0, 0] },
    ];
    const t64 = (f: (x: (typeof rows)[number]) => number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(rows.flatMap(f), (x) => BigInt(x)), [2, S]);
    const s = await ort.InferenceSession.create(r.modelPath, { intraOpNumThreads: 1 });
    const out = await s.run({ input_ids: t64((x) => x.ids), token_type_ids: t64((x) => x.types), attention_mask: t64((x) => x.mask) });
    await s.release();
    const hidden = out.last_hidden_state.data as Float32Array, logits = out.logits.data as Float32Array;
    let m = 0;
    rows.forEach((row, b) => {
      const ref = reference(w, row.ids, row.types, row.mask);
      for (let t = 0; t < S; t++) {
        if (row.mask[t] === 0) continue; // padded positions' states are not defined by the reference
        for (let i = 0; i < H; i++) m = Math.max(m, Math.abs(hidden[(b * S + t) * H + i] - ref.hidden[t][i]));
      }
      for (let c = 0; c < C; c++) m = Math.max(m, Math.abs(logits[b * C + c] - ref.logits[c]));
    });
    expect(m).toBeLessThan(1e-4);

    const map = mapArchitecture(await readModel(r.modelPath));
    expect(map.family).toBe('bert');
    expect(map.blocks).toHaveLength(L);
    expect((await inspectModel(r.modelPath)).kind).toBe('encoder');
  }, 60_000);
});
