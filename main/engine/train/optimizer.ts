/**
 * AdamW over named fp32 parameter tensors, with global-norm clipping and pruning masks; the arithmetic
 * runs in the native kernels (native/optimizer.ts).
 *
 * One optimizer step, given the gradients of the SUM of token losses over the step's micro-batches:
 *   norm   = gradScale · √(Σ_tensors Σ_i g_i²)        (masked elements left out; the norm that is reported)
 *   factor = min(1, clipNorm / (norm + 1e-6))        (1 when clipNorm = 0; torch.nn.utils.clip_grad_norm_)
 *   AdamW with g ← g · gradScale · factor            (PyTorch's torch.optim.AdamW: decoupled decay λ = weightDecay
 *                                                     on tensors with `decay`, none on the others)
 * `gradScale` is 1/tokens for a mean over the step's tokens. A step whose norm is not finite (NaN or ±inf in
 * a gradient) changes nothing: the weights, moments and step count stay as they were and the result says
 * `applied: false`, so the loop can stop or skip with a message of its own.
 *
 * Masks (keepSparsity): where mask[i] = 0 the weight and its moments are kept exactly 0 on every step.
 */
import { WhittleError } from '../errors.ts';
import { adamwStep, gradSquaredSums, type AdamwTensor } from '../native/optimizer.ts';

export interface AdamWParam {
  name: string;
  /** fp32 master weights, updated in place by `step`. */
  weights: Float32Array;
  /** Apply weight decay to this tensor (see `decays`). */
  decay: boolean;
  /** One byte per weight, 0 = pruned (kept exactly 0). */
  mask?: Uint8Array;
}

export interface AdamWHyperparameters {
  beta1: number;
  beta2: number;
  eps: number;
  /** λ of the tensors with `decay`. */
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWHyperparameters = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export interface AdamWStepOptions {
  lr: number;
  /** Multiplies every gradient (1/tokens). */
  gradScale: number;
  /** Clip the global norm (after gradScale) to this value; 0 = no clipping. */
  clipNorm: number;
}

export interface AdamWStepResult {
  /** The global gradient norm after gradScale, before clipping. */
  gradNorm: number;
  /** min(1, clipNorm / (gradNorm + 1e-6)), or 1 without clipping. */
  clipFactor: number;
  /** False when the norm was not finite and nothing was changed. */
  applied: boolean;
}

/** The optimizer's state: the step count and each tensor's moments (views of the live arrays, not copies). */
export interface AdamWState {
  step: number;
  moments: { name: string; m: Float32Array; v: Float32Array }[];
}

/** Roles under which a tensor is an embedding table (see `decays`). */
const EMBEDDING_NAME = /embed|(^|[._/])(wte|wpe)([._/]|$)/i;

/**
 * The default weight-decay rule: no decay on 1-D tensors (biases, norm scales), on norms, or on embedding
 * tables (role 'embedding', or a name like `embed_tokens` / `wte` when the role is unknown) unless
 * `embeddings` asks for it; decay on every other matrix.
 */
export function decays(name: string, role: string | null | undefined, dims: readonly number[], options: { embeddings?: boolean } = {}): boolean {
  if (dims.length < 2) return false;
  if (role === 'norm') return false;
  const embedding = role === 'embedding' || ((role === null || role === undefined || role === 'other') && EMBEDDING_NAME.test(name));
  if (embedding) return options.embeddings ?? false;
  return true;
}

/** The keep-mask of a tensor's exact zeros (1 = trainable, 0 = zero now and kept zero), or undefined when it has none. */
export function zeroMask(weights: Float32Array): Uint8Array | undefined {
  if (!weights.includes(0)) return undefined;
  const mask = new Uint8Array(weights.length);
  for (let i = 0; i < weights.length; i++) mask[i] = weights[i] === 0 ? 0 : 1;
  return mask;
}

function invalid(message: string, details?: Record<string, unknown>): WhittleError {
  return new WhittleError('INVALID_INPUT', message, details);
}

export class AdamW {
  readonly params: readonly AdamWParam[];
  readonly hp: AdamWHyperparameters;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private t = 0;
  private busy = false;

  constructor(params: AdamWParam[], hp: Partial<AdamWHyperparameters> = {}) {
    this.hp = { ...ADAMW_DEFAULTS, ...hp };
    const { beta1, beta2, eps, weightDecay } = this.hp;
    if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw invalid(`AdamW's betas must lie in [0, 1), got ${beta1} and ${beta2}.`);
    if (!(eps > 0 && Number.isFinite(eps))) throw invalid(`AdamW's eps must be a positive number, got ${eps}.`);
    if (!(weightDecay >= 0 && Number.isFinite(weightDecay))) throw invalid(`The weight decay must be a number ≥ 0, got ${weightDecay}.`);
    const names = new Set<string>();
    for (const p of params) {
      if (names.has(p.name)) throw invalid(`The parameter ${p.name} is listed twice.`);
      names.add(p.name);
      if (!(p.weights instanceof Float32Array)) throw invalid(`The weights of ${p.name} must be a Float32Array.`);
      if (p.mask && p.mask.length !== p.weights.length) {
        throw invalid(`The mask of ${p.name} holds ${p.mask.length} bytes but the tensor has ${p.weights.length} weights.`);
      }
    }
    this.params = params.map((p) => ({ ...p }));
    this.m = params.map((p) => new Float32Array(p.weights.length));
    this.v = params.map((p) => new Float32Array(p.weights.length));
  }

  /** Optimizer steps taken so far (the bias corrections use it). */
  get stepCount(): number {
    return this.t;
  }

  /** One step with `grads` in the order of the parameters (see the header). Do not touch the arrays until it settles. */
  async step(grads: Float32Array[], options: AdamWStepOptions): Promise<AdamWStepResult> {
    const { lr, gradScale, clipNorm } = options;
    if (!(lr >= 0 && Number.isFinite(lr))) throw invalid(`The learning rate must be a number ≥ 0, got ${lr}.`);
    if (!(gradScale >= 0 && Number.isFinite(gradScale))) throw invalid(`gradScale must be a number ≥ 0, got ${gradScale}.`);
    if (!(clipNorm >= 0 && Number.isFinite(clipNorm))) throw invalid(`clipNorm must be a number ≥ 0 (0 = no clipping), got ${clipNorm}.`);
    if (grads.length !== this.params.length) throw invalid(`AdamW got ${grads.length} gradients for ${this.params.length} parameters.`);
    grads.forEach((g, i) => {
      if (!(g instanceof Float32Array) || g.length !== this.params[i].weights.length) {
        throw invalid(`The gradient of ${this.params[i].name} must be a Float32Array of ${this.params[i].weights.length} elements.`);
      }
    });
    if (this.busy) throw new WhittleError('INTERNAL', 'AdamW.step was called while the previous step was still running.');
    this.busy = true;
    try {
      const sums = await gradSquaredSums(grads, this.params.map((p) => p.mask ?? null));
      let total = 0;
      for (const s of sums) total += s;
      const gradNorm = Math.sqrt(total) * gradScale;
      if (!Number.isFinite(gradNorm)) return { gradNorm, clipFactor: 0, applied: false };
      const clipFactor = clipNorm > 0 ? Math.min(1, clipNorm / (gradNorm + 1e-6)) : 1;
      const tensors: AdamwTensor[] = this.params.map((p, i) => ({
        weights: p.weights,
        grads: grads[i],
        m: this.m[i],
        v: this.v[i],
        mask: p.mask ?? null,
        weightDecay: p.decay ? this.hp.weightDecay : 0,
      }));
      const { beta1, beta2, eps } = this.hp;
      await adamwStep(tensors, { lr, beta1, beta2, eps, step: this.t + 1, gradScale: gradScale * clipFactor });
      this.t++;
      return { gradNorm, clipFactor, applied: true };
    } finally {
      this.busy = false;
    }
  }

  state(): AdamWState {
    return { step: this.t, moments: this.params.map((p, i) => ({ name: p.name, m: this.m[i], v: this.v[i] })) };
  }

  /** Restores a state written by `state()` (copied in): the same parameters, by name, with the same sizes. */
  load(state: AdamWState): void {
    if (!Number.isSafeInteger(state.step) || state.step < 0) throw invalid(`The optimizer state's step must be an integer ≥ 0, got ${state.step}.`);
    const byName = new Map(state.moments.map((x) => [x.name, x]));
    if (byName.size !== this.params.length || state.moments.length !== this.params.length) {
      throw invalid(`The optimizer state holds ${state.moments.length} tensors but this run trains ${this.params.length}.`);
    }
    this.params.forEach((p) => {
      const x = byName.get(p.name);
      if (!x) throw invalid(`The optimizer state has no moments for ${p.name}.`, { name: p.name });
      if (x.m.length !== p.weights.length || x.v.length !== p.weights.length) {
        throw invalid(`The optimizer state's moments of ${p.name} hold ${x.m.length} and ${x.v.length} values but the tensor has ${p.weights.length}.`, { name: p.name });
      }
    });
    this.params.forEach((p, i) => {
      const x = byName.get(p.name)!;
      this.m[i].set(x.m);
      this.v[i].set(x.v);
    });
    this.t = state.step;
  }
}
