/**
 * The training view and its loss head against the model itself: the view of stories260K (static shapes,
 * no cache, folded shape arithmetic) scores a batch with the same cross-entropy as the original graph's
 * logits (float64 reference in TypeScript), padding ignored; the train-step graph returns a gradient for
 * every trainable weight; one AdamW step on those gradients equals a plain reference implementation.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { mapArchitecture } from '../../main/engine/rewrite/architecture.ts';
import { createSession, decoderFeeds, detectDecoderLayoutFromSession } from '../../main/engine/evaluate/decoder-session.ts';
import { crossEntropyHead } from '../../main/engine/train/loss-head.ts';
import { AdamW } from '../../main/engine/train/optimizer.ts';
import { StepSession } from '../../main/engine/train/session.ts';
import { ReferenceAdamW } from '../helpers/adamw-reference.ts';
import { compileEvalStep, compileTrainStep } from '../../main/engine/train/step-graph.ts';
import { buildTrainingView } from '../../main/engine/train/view.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const B = 2, T = 12;
const scratch = tempDir('whittle-view-');
afterAll(() => scratch.cleanup());

/** Deterministic token ids in [1, vocab). */
function tokens(n: number, vocab: number, seed: number): number[] {
  const out: number[] = [];
  let s = seed;
  for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) >>> 0; out.push(1 + (s % (vocab - 1))); }
  return out;
}

/** Mean next-token cross-entropy (float64) of the original model's logits over positions with label ≥ 0. */
async function referenceLoss(ids: number[], labels: number[]): Promise<{ sum: number; count: number }> {
  const session = await createSession(STORIES.model, 1);
  try {
    const layout = detectDecoderLayoutFromSession(session, STORIES.model);
    const out = await session.run(decoderFeeds(layout, ids, B, T, 0));
    const logits = out[layout.logits.name].data as Float32Array;
    const V = logits.length / (B * T);
    let sum = 0, count = 0;
    for (let r = 0; r < B * T; r++) {
      if (labels[r] < 0) continue;
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[r * V + v]);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[r * V + v] - max);
      sum += Math.log(z) + max - logits[r * V + labels[r]];
      count++;
    }
    return { sum, count };
  } finally {
    await session.release();
  }
}

describe('training view of stories260K', () => {
  it('scores a batch like the original graph, padding ignored, and differentiates every weight', async () => {
    const source = await readModel(STORIES.model);
    const arch = mapArchitecture(source);
    const view = await buildTrainingView(source, arch, { batch: B, length: T, frozen: () => false, scratchDir: scratch.dir });
    expect(view.vocab).toBe(512);
    // Every MatMul weight, the embedding and the norms are trainable; rotary tables are not.
    const names = view.trainable.map((p) => p.name);
    expect(names).toContain('model.embed_tokens.weight');
    expect(names).toContain('model.layers.4.mlp.down_proj.weight_t');
    expect(names).toContain('model.norm.weight');
    expect(names).not.toContain('rope_cos');
    expect(view.trainable).toHaveLength(1 + 5 * 9 + 1);
    // The cache inputs are gone: the view's only data input is input_ids.
    const inputs = view.model.graph?.input.map((v) => v.name) ?? [];
    expect(inputs.filter((n) => !names.includes(n ?? ''))).toEqual(['input_ids']);

    const ids = tokens(B * T, 512, 7);
    const labels = tokens(B * T, 512, 11);
    for (const i of [3, 4, 17, 23]) labels[i] = -1; // padding
    const head = crossEntropyHead(B, T, view.vocab);
    const weights = view.trainable.map((p) => view.initial.get(p.name) ?? new Float32Array(0));
    const evalSession = await StepSession.open(compileEvalStep(view, head), view.trainable, weights, [B, T], `${scratch.dir}/eval`);
    const batch = { inputIds: BigInt64Array.from(ids.map(BigInt)), labels: BigInt64Array.from(labels.map(BigInt)) };
    const got = await evalSession.run(batch);
    await evalSession.close();
    const want = await referenceLoss(ids, labels);
    expect(got.tokenCount).toBe(want.count);
    expect(Math.abs(got.lossSum - want.sum) / want.sum).toBeLessThan(1e-5);

    const trainSession = await StepSession.open(compileTrainStep(view, head), view.trainable, weights, [B, T], `${scratch.dir}/train`);
    const step = await trainSession.run(batch);
    expect(Math.abs(step.lossSum - want.sum) / want.sum).toBeLessThan(1e-5);
    expect(step.grads).toHaveLength(view.trainable.length);
    for (const [i, g] of step.grads.entries()) {
      expect(g.length).toBe(weights[i].length);
      expect(g.every(Number.isFinite)).toBe(true);
      expect(g.some((x) => x !== 0)).toBe(true);
    }

    // One AdamW step on these gradients (clipping, decay on matrices, a pruned mask on one weight) equals the
    // plain reference within 1e-6 relative, weight by weight.
    const masks = view.trainable.map((p, i) => (p.name.endsWith('down_proj.weight_t') ? Uint8Array.from(weights[i], (_, k) => (k % 3 === 0 ? 0 : 1)) : undefined));
    const native = new AdamW(view.trainable.map((p, i) => ({ name: p.name, weights: Float32Array.from(weights[i]), decay: p.decay, mask: masks[i] })), { weightDecay: 0.1 });
    const reference = new ReferenceAdamW(view.trainable.map((p, i) => ({ weights: Float32Array.from(weights[i]), decay: p.decay, mask: masks[i] })), { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 });
    const options = { lr: 1e-3, gradScale: 1 / step.tokenCount, clipNorm: 0.5 };
    const nativeStep = await native.step(step.grads, options);
    const referenceStep = reference.step(step.grads, options);
    expect(Math.abs(nativeStep.gradNorm - referenceStep.gradNorm) / referenceStep.gradNorm).toBeLessThan(1e-6);
    expect(nativeStep.clipFactor).toBeLessThan(1);
    for (const [i, p] of native.params.entries()) {
      const want = reference.weights[i];
      let worst = 0;
      for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(p.weights[k] - want[k]) / Math.max(Math.abs(want[k]), 1e-12));
      expect(worst, p.name).toBeLessThan(1e-6);
      expect(p.weights.some((x, k) => x !== weights[i][k])).toBe(true);
    }
    await trainSession.close();
  }, 120_000);
});
