/**
 * The AdamW class (native kernels underneath) against a plain TypeScript AdamW written from PyTorch's
 * definition (float64 arithmetic, fp32 storage): one step and three steps, with and without clipping, masks and weight decay;
 * its state round trip, the step that meets a non-finite gradient, and the default weight-decay rule.
 */
import { describe, expect, it } from 'vitest';
import { AdamW, decays, zeroMask, type AdamWParam } from '../../../main/engine/train/optimizer.ts';
import { ReferenceAdamW } from '../../helpers/adamw-reference.ts';
import { rng } from '../native/simd-paths.ts';

const HP = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };

interface Setup {
  params: AdamWParam[];
  reference: ReferenceAdamW;
  grads: (step: number) => Float32Array[];
}

/** Four tensors (a matrix with decay, a masked matrix with decay, a bias, an odd-sized table) and per-step gradients. */
function setup(seed: number, options: { masks: boolean; decay: boolean }): Setup {
  const random = rng(seed);
  const sizes = [48 * 40, 33 * 17, 40, 1001];
  const params: AdamWParam[] = sizes.map((n, k) => {
    const weights = Float32Array.from({ length: n }, () => (random() - 0.5) * 0.2);
    let mask: Uint8Array | undefined;
    if (options.masks && k === 1) {
      mask = Uint8Array.from({ length: n }, () => (random() < 0.5 ? 0 : 1));
      mask.forEach((keep, i) => { if (!keep) weights[i] = 0; });
    }
    return { name: `t${k}`, weights, decay: options.decay && k < 2, mask };
  });
  const reference = new ReferenceAdamW(params.map((p) => ({ weights: p.weights.slice(), decay: p.decay, mask: p.mask })), HP);
  const grads = (step: number) => {
    const r = rng(seed * 1000 + step);
    return sizes.map((n) => Float32Array.from({ length: n }, () => (r() - 0.5) * 40));
  };
  return { params, reference, grads };
}

/** max |a − b| / |b| over all elements (0 where both are 0). */
function worstRelative(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (d > 0) worst = Math.max(worst, d / Math.abs(expected[i]));
  }
  return worst;
}

describe('AdamW against the plain reference', () => {
  const cases = [
    { name: 'one step, no clipping, no masks, no decay', steps: 1, clipNorm: 0, masks: false, decay: false },
    { name: 'one step with decay and masks', steps: 1, clipNorm: 0, masks: true, decay: true },
    { name: 'three steps with clipping, masks and decay', steps: 3, clipNorm: 1, masks: true, decay: true },
    { name: 'three steps with clipping, no decay', steps: 3, clipNorm: 0.5, masks: false, decay: false },
  ];
  for (const c of cases) {
    it(`${c.name}: weights, moments and norms within 1e-6 relative`, async () => {
      const { params, reference, grads } = setup(7 + c.steps, c);
      const before = params.map((p) => p.weights.slice());
      const adamw = new AdamW(params, HP);
      for (let s = 1; s <= c.steps; s++) {
        const g = grads(s);
        const options = { lr: 1e-2 * s, gradScale: 1 / 512, clipNorm: c.clipNorm };
        const result = await adamw.step(g, options);
        const expected = reference.step(g, options);
        expect(result.applied).toBe(true);
        expect(Math.abs(result.gradNorm - expected.gradNorm)).toBeLessThanOrEqual(1e-9 * expected.gradNorm);
        if (c.clipNorm > 0) expect(result.clipFactor).toBeLessThan(1); // the gradients are large enough to be clipped
      }
      expect(adamw.stepCount).toBe(c.steps);
      const state = adamw.state();
      params.forEach((p, k) => {
        expect(worstRelative(p.weights, reference.weights[k]), `weights of ${p.name}`).toBeLessThanOrEqual(1e-6);
        expect(worstRelative(state.moments[k].m, reference.m[k]), `m of ${p.name}`).toBeLessThanOrEqual(1e-6);
        expect(worstRelative(state.moments[k].v, reference.v[k]), `v of ${p.name}`).toBeLessThanOrEqual(1e-6);
        expect(p.weights.some((w, i) => w !== before[k][i])).toBe(true);
      });
      if (c.masks) {
        const masked = params[1];
        masked.mask!.forEach((keep, i) => { if (!keep) expect([masked.weights[i], state.moments[1].m[i], state.moments[1].v[i]]).toEqual([0, 0, 0]); });
      }
    });
  }

  it('decays only the tensors marked for decay', async () => {
    const { params, grads } = setup(3, { masks: false, decay: true });
    const zeroGrads = grads(1).map((g) => new Float32Array(g.length));
    const before = params.map((p) => p.weights.slice());
    await new AdamW(params, HP).step(zeroGrads, { lr: 0.5, gradScale: 1, clipNorm: 0 });
    // With zero gradients only the decay moves weights: w · (1 − lr·λ).
    params.forEach((p, k) => {
      const factor = p.decay ? 1 - 0.5 * HP.weightDecay : 1;
      expect(worstRelative(p.weights, before[k].map((w) => w * factor))).toBeLessThanOrEqual(1e-6);
    });
  });
});

describe('AdamW state and failures', () => {
  it('resumes from its state exactly as an uninterrupted run', async () => {
    const a = setup(21, { masks: true, decay: true });
    const b = setup(21, { masks: true, decay: true });
    const options = { lr: 1e-2, gradScale: 1 / 100, clipNorm: 1 };
    const straight = new AdamW(a.params, HP);
    for (let s = 1; s <= 3; s++) await straight.step(a.grads(s), options);

    const first = new AdamW(b.params, HP);
    await first.step(b.grads(1), options);
    const saved = first.state();
    const snapshot = { step: saved.step, moments: saved.moments.map((x) => ({ name: x.name, m: x.m.slice(), v: x.v.slice() })) };
    const resumed = new AdamW(b.params, HP);
    resumed.load(snapshot);
    expect(resumed.stepCount).toBe(1);
    for (let s = 2; s <= 3; s++) await resumed.step(b.grads(s), options);
    b.params.forEach((p, k) => expect(Array.from(p.weights)).toEqual(Array.from(a.params[k].weights)));
  });

  it('refuses a state for other parameters', () => {
    const { params } = setup(4, { masks: false, decay: false });
    const adamw = new AdamW(params, HP);
    const state = adamw.state();
    expect(() => adamw.load({ ...state, moments: state.moments.slice(1) })).toThrow(/holds 3 tensors but this run trains 4/);
    const renamed = state.moments.map((x, k) => (k === 2 ? { ...x, name: 'other' } : x));
    expect(() => adamw.load({ ...state, moments: renamed })).toThrow(/no moments for t2/);
  });

  it('leaves everything unchanged when a gradient is not finite', async () => {
    const { params, grads } = setup(5, { masks: false, decay: true });
    const before = params.map((p) => p.weights.slice());
    const adamw = new AdamW(params, HP);
    const g = grads(1);
    g[2][3] = Number.NaN;
    const result = await adamw.step(g, { lr: 1e-2, gradScale: 1, clipNorm: 1 });
    expect(result.applied).toBe(false);
    expect(result.gradNorm).toBeNaN();
    expect(adamw.stepCount).toBe(0);
    params.forEach((p, k) => expect(Array.from(p.weights)).toEqual(Array.from(before[k])));
  });

  it('rejects gradients of the wrong size', async () => {
    const { params, grads } = setup(6, { masks: false, decay: false });
    const g = grads(1);
    g[1] = new Float32Array(3);
    await expect(new AdamW(params, HP).step(g, { lr: 1e-3, gradScale: 1, clipNorm: 0 })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});

describe('the default weight-decay rule', () => {
  it('decays matrices but not biases, norms or embeddings unless asked', () => {
    expect(decays('model.layers.0.self_attn.q_proj.weight', 'q', [64, 64])).toBe(true);
    expect(decays('model.layers.0.self_attn.q_proj.bias', 'q', [64])).toBe(false);
    expect(decays('model.layers.0.input_layernorm.weight', 'norm', [64])).toBe(false);
    expect(decays('model.embed_tokens.weight', 'embedding', [512, 64])).toBe(false);
    expect(decays('model.embed_tokens.weight', null, [512, 64])).toBe(false);
    expect(decays('transformer.wte.weight', undefined, [512, 64])).toBe(false);
    expect(decays('model.embed_tokens.weight', 'embedding', [512, 64], { embeddings: true })).toBe(true);
    expect(decays('lm_head.weight', 'lm_head', [512, 64])).toBe(true);
  });

  it('masks the exact zeros of a tensor', () => {
    expect(zeroMask(Float32Array.of(1, 2))).toBeUndefined();
    expect(Array.from(zeroMask(Float32Array.of(1, 0, -0, 3))!)).toEqual([1, 0, 0, 1]);
  });
});
