/**
 * A plain AdamW, written straight from PyTorch's torch.optim.AdamW documentation, to check the native
 * optimizer against: float64 arithmetic, one element at a time, with weights and moments stored as
 * float32 between steps (fp32 master weights and moments, as the optimizer under test keeps them).
 *
 *   norm   = gradScale · √(Σ g²)  over unmasked elements;  factor = min(1, clipNorm / (norm + 1e-6)) or 1
 *   g      = grad · gradScale · factor
 *   w      = w − lr·λ·w                                   (decoupled weight decay)
 *   m      = β1·m + (1 − β1)·g;   v = β2·v + (1 − β2)·g²
 *   m̂      = m / (1 − β1^t);      v̂ = v / (1 − β2^t)
 *   w      = w − lr · m̂ / (√v̂ + ε)
 * Masked elements (mask 0): w, m, v = 0.
 */
export interface ReferenceParam {
  weights: Float32Array;
  decay: boolean;
  mask?: Uint8Array;
}

export class ReferenceAdamW {
  readonly weights: Float32Array[];
  readonly m: Float32Array[];
  readonly v: Float32Array[];
  t = 0;
  private readonly params: ReferenceParam[];
  private readonly hp: { beta1: number; beta2: number; eps: number; weightDecay: number };

  constructor(params: ReferenceParam[], hp: { beta1: number; beta2: number; eps: number; weightDecay: number }) {
    this.params = params;
    this.hp = hp;
    this.weights = params.map((p) => p.weights.slice());
    this.m = params.map((p) => new Float32Array(p.weights.length));
    this.v = params.map((p) => new Float32Array(p.weights.length));
  }

  step(grads: Float32Array[], options: { lr: number; gradScale: number; clipNorm: number }): { gradNorm: number } {
    const { beta1, beta2, eps, weightDecay } = this.hp;
    const { lr, gradScale, clipNorm } = options;

    let squares = 0;
    this.params.forEach((p, k) => {
      grads[k].forEach((g, i) => {
        if (!p.mask || p.mask[i] !== 0) squares += g * g;
      });
    });
    const gradNorm = gradScale * Math.sqrt(squares);
    const factor = clipNorm > 0 ? Math.min(1, clipNorm / (gradNorm + 1e-6)) : 1;

    this.t += 1;
    const correction1 = 1 - beta1 ** this.t;
    const correction2 = 1 - beta2 ** this.t;
    this.params.forEach((p, k) => {
      const w = this.weights[k];
      const m = this.m[k];
      const v = this.v[k];
      const lambda = p.decay ? weightDecay : 0;
      for (let i = 0; i < w.length; i++) {
        if (p.mask && p.mask[i] === 0) {
          w[i] = 0;
          m[i] = 0;
          v[i] = 0;
          continue;
        }
        const g = grads[k][i] * gradScale * factor;
        let weight = w[i];
        weight = weight - lr * lambda * weight;
        const mi = beta1 * m[i] + (1 - beta1) * g;
        const vi = beta2 * v[i] + (1 - beta2) * g * g;
        const mHat = mi / correction1;
        const vHat = vi / correction2;
        weight = weight - (lr * mHat) / (Math.sqrt(vHat) + eps);
        w[i] = weight; // rounded to float32 on store
        m[i] = mi;
        v[i] = vi;
      }
    });
    return { gradNorm };
  }
}
