/**
 * The ORT GenAI fixture graphs train after their contrib ops are decomposed: GPT-2 (EmbedLayerNormalization,
 * Attention, SkipLayerNormalization, FastGelu; combined past) and the float16 Llama in external data
 * (RotaryEmbedding, MultiHeadAttention, SkipSimplifiedLayerNormalization). One train step's loss equals the
 * original graph's cross-entropy, every trainable weight gets a finite gradient, and a few AdamW steps on
 * one batch lower its loss.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { createSession, decoderFeeds, detectDecoderLayoutFromSession } from '../../main/engine/evaluate/decoder-session.ts';
import { halfToFloat } from '../../main/engine/onnx/tensor-data.ts';
import { crossEntropyHead } from '../../main/engine/train/loss-head.ts';
import { AdamW } from '../../main/engine/train/optimizer.ts';
import { StepSession } from '../../main/engine/train/session.ts';
import { compileTrainStep } from '../../main/engine/train/step-graph.ts';
import { buildTrainingView } from '../../main/engine/train/view.ts';
import { fixture, tempDir } from '../helpers/fixtures.ts';

const scratch = tempDir('whittle-train-fixtures-');
afterAll(() => scratch.cleanup());
const B = 2, T = 6;

async function originalLoss(model: string, ids: number[], labels: number[]): Promise<number> {
  const session = await createSession(model, 1);
  try {
    const layout = detectDecoderLayoutFromSession(session, model);
    const out = await session.run(decoderFeeds(layout, ids, B, T, 0));
    const t = out[layout.logits.name];
    const raw = t.data as ArrayLike<number>;
    const logits = t.type === 'float16' ? Float64Array.from(raw as Uint16Array, (h) => halfToFloat(h)) : Float64Array.from(raw);
    const V = logits.length / (B * T);
    let sum = 0;
    for (let r = 0; r < B * T; r++) {
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[r * V + v]);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[r * V + v] - max);
      sum += Math.log(z) + max - logits[r * V + labels[r]];
    }
    return sum;
  } finally {
    await session.release();
  }
}

const CASES = [
  { name: 'GPT-2 with contrib ops', model: fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx'), tolerance: 1e-4 },
  { name: 'float16 Llama with contrib ops', model: fixture('onnx', 'ortgenai', 'tiny-random-LlamaForCausalLM-fp16', 'model.onnx'), tolerance: 2e-2 },
];

describe('ORT GenAI fixtures train after decomposition', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const source = await readModel(c.model);
      const view = await buildTrainingView(source, mapArchitecture(source), { batch: B, length: T, frozen: () => false, scratchDir: scratch.dir });
      const V = view.vocab;
      const ids = Array.from({ length: B * T }, (_, i) => (i * 37 + 5) % V);
      const labels = Array.from({ length: B * T }, (_, i) => (i * 53 + 11) % V);
      expect(view.trainable.length).toBeGreaterThan(4);
      if (c.tolerance > 1e-3) expect(view.trainable.some((p) => p.sourceDtype === DataType.float16)).toBe(true);
      const weights = view.trainable.map((p) => view.initial.get(p.name) ?? new Float32Array(0));
      const session = await StepSession.open(compileTrainStep(view, crossEntropyHead(B, T, V)), view.trainable, weights, [B, T], `${scratch.dir}/${c.name.length}`);
      const batch = { inputIds: BigInt64Array.from(ids.map(BigInt)), labels: BigInt64Array.from(labels.map(BigInt)) };
      const first = await session.run(batch);
      expect(first.tokenCount).toBe(B * T);
      const want = await originalLoss(c.model, ids, labels);
      expect(Math.abs(first.lossSum - want) / want).toBeLessThan(c.tolerance);
      for (const g of first.grads) expect(g.every(Number.isFinite)).toBe(true);
      expect(first.grads.filter((g) => g.some((x) => x !== 0)).length).toBe(first.grads.length);

      const optimizer = new AdamW(view.trainable.map((p, i) => ({ name: p.name, weights: weights[i], decay: p.decay })), {});
      let r = first;
      for (let s = 0; s < 5; s++) {
        await optimizer.step(r.grads, { lr: 1e-2, gradScale: 1 / r.tokenCount, clipNorm: 1 });
        r = await session.run(batch);
      }
      expect(r.lossSum).toBeLessThan(first.lossSum * 0.95);
      await session.close();
    }, 120_000);
  }
});
