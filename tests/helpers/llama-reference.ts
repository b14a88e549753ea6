/**
 * A plain forward pass of a llama2.c model (run.c's `forward`, one token at a time with a KV cache), in
 * float64, to check the ONNX graphs of llama-onnx.ts against. Weights are [out, in] row-major.
 */
import { headSize, ropeTables, type LlamaShape, type LlamaWeights } from './llama-onnx.ts';

/** out [n] = W [n, k] · x [k] */
function matvec(out: Float64Array, w: Float32Array, x: Float64Array, n: number, k: number): void {
  for (let i = 0; i < n; i++) {
    let acc = 0;
    const row = i * k;
    for (let j = 0; j < k; j++) acc += w[row + j] * x[j];
    out[i] = acc;
  }
}

/** out = x / √(mean(x²) + 1e-5) · g */
function rmsNorm(out: Float64Array, x: Float64Array, g: Float32Array): void {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + 1e-5);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * inv * g[i];
}

/** Rotates consecutive pairs (v[2i], v[2i+1]) of each head by position `pos`. */
function rope(v: Float64Array, heads: number, d: number, pos: number, cos: Float32Array, sin: Float32Array): void {
  const half = d / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const c = cos[pos * half + i], s = sin[pos * half + i];
      const a = v[h * d + 2 * i], b = v[h * d + 2 * i + 1];
      v[h * d + 2 * i] = a * c - b * s;
      v[h * d + 2 * i + 1] = a * s + b * c;
    }
  }
}

/** Logits [tokens.length, V] of one sequence starting at position 0. */
export function llamaReferenceLogits(s: LlamaShape, w: LlamaWeights, tokens: readonly number[]): Float32Array {
  const D = s.dim, F = s.hidden, H = s.heads, KV = s.kvHeads, d = headSize(s), rep = H / KV, kvDim = KV * d, V = s.vocab;
  const n = tokens.length;
  const { cos, sin } = ropeTables(s.maxSeq, d);
  const keys = w.layers.map(() => new Float64Array(n * kvDim));
  const values = w.layers.map(() => new Float64Array(n * kvDim));
  const x = new Float64Array(D), xb = new Float64Array(D), xb2 = new Float64Array(D);
  const q = new Float64Array(D), k = new Float64Array(kvDim), v = new Float64Array(kvDim);
  const hb = new Float64Array(F), hb2 = new Float64Array(F), att = new Float64Array(n);
  const logits = new Float32Array(n * V), row = new Float64Array(V);
  for (let pos = 0; pos < n; pos++) {
    for (let i = 0; i < D; i++) x[i] = w.embed[tokens[pos] * D + i];
    w.layers.forEach((L, l) => {
      rmsNorm(xb, x, L.attnNorm);
      matvec(q, L.wq, xb, D, D);
      matvec(k, L.wk, xb, kvDim, D);
      matvec(v, L.wv, xb, kvDim, D);
      rope(q, H, d, pos, cos, sin);
      rope(k, KV, d, pos, cos, sin);
      keys[l].set(k, pos * kvDim);
      values[l].set(v, pos * kvDim);
      // Each query head h attends over positions 0..pos with kv head ⌊h / rep⌋.
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / rep);
        let max = -Infinity;
        for (let t = 0; t <= pos; t++) {
          let dot = 0;
          for (let i = 0; i < d; i++) dot += q[h * d + i] * keys[l][t * kvDim + kvh * d + i];
          att[t] = dot / Math.sqrt(d);
          max = Math.max(max, att[t]);
        }
        let sum = 0;
        for (let t = 0; t <= pos; t++) sum += (att[t] = Math.exp(att[t] - max));
        for (let i = 0; i < d; i++) {
          let acc = 0;
          for (let t = 0; t <= pos; t++) acc += (att[t] / sum) * values[l][t * kvDim + kvh * d + i];
          xb[h * d + i] = acc;
        }
      }
      matvec(xb2, L.wo, xb, D, D);
      for (let i = 0; i < D; i++) x[i] += xb2[i];
      rmsNorm(xb, x, L.mlpNorm);
      matvec(hb, L.gate, xb, F, D);
      matvec(hb2, L.up, xb, F, D);
      for (let i = 0; i < F; i++) hb[i] = (hb[i] / (1 + Math.exp(-hb[i]))) * hb2[i];
      matvec(xb2, L.down, hb, D, F);
      for (let i = 0; i < D; i++) x[i] += xb2[i];
    });
    rmsNorm(xb, x, w.finalNorm);
    matvec(row, w.lmHead ?? w.embed, xb, V, D);
    logits.set(row, pos * V);
  }
  return logits;
}
