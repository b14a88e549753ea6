/**
 * Dropout on the input of LoRA adapters (peft's lora_dropout): during training the adapter reads
 *   dropout(x)·A·B,   dropout(x) = x ⊙ m,   m = Bernoulli(1 − p) / (1 − p)     (inverted dropout)
 * with m [B, T, in] a graph input of the train-step graph, so the backward is the Mul rule's:
 * ∂A = (x ⊙ m)ᵀ·(g·Bᵀ) and ∂x gets m ⊙ (g·Bᵀ·Aᵀ). Evaluation passes are fed m = 1 (no dropout), and the
 * export merges W + (α/r)·A·B without any mask.
 *
 * Each mask is a function of (seed, optimizer step, micro-batch, adapter): a fresh mask every step, and
 * a resumed run (which knows its step from the checkpoint) draws exactly the masks the interrupted run
 * would have drawn, with no generator state to store.
 */
import * as ort from 'onnxruntime-node';
import { WhittleError } from '../errors.ts';

/** Where in the run a mask is drawn: the optimizer step (1-based) and its micro-batch (0-based). */
export interface DropoutDraw {
  step: number;
  micro: number;
}

/** One adapter's mask input: its graph input name and shape (the adapted MatMul's input, [B, T, in]). */
export interface DropoutInput {
  name: string;
  shape: readonly number[];
}

export function checkDropout(p: number): void {
  if (!(p >= 0 && p < 1) || !Number.isFinite(p)) {
    throw new WhittleError('INVALID_INPUT', `LoRA dropout is a probability from 0 (off) up to but not including 1 (got ${p}); common values are 0.05 to 0.1.`);
  }
}

/** 32-bit mix of the words (murmur3's finaliser over a running hash). */
function mix(words: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    h = Math.imul(h ^ (w >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/**
 * The mask of adapter `index` at `draw`: each entry 0 with probability p, else 1/(1 − p) (float32).
 * A mulberry32 stream seeded from (seed, step, micro, index).
 */
export function dropoutMask(size: number, p: number, seed: number, draw: DropoutDraw, index: number): Float32Array {
  const mask = new Float32Array(size);
  const keep = 1 / (1 - p);
  let s = mix([seed, draw.step, draw.micro, index, 0x10ad]);
  for (let i = 0; i < size; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    mask[i] = u < p ? 0 : keep;
  }
  return mask;
}

const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * The feeds of the mask inputs: fresh masks for a training draw, all ones for an evaluation pass
 * (`draw` null; built once and reused).
 */
export function dropoutFeeder(inputs: readonly DropoutInput[], p: number, seed: number): (draw: DropoutDraw | null) => Record<string, ort.Tensor> {
  let ones: Record<string, ort.Tensor> | null = null;
  return (draw) => {
    if (draw === null) {
      ones ??= Object.fromEntries(inputs.map((m) => [m.name, new ort.Tensor('float32', new Float32Array(sizeOf(m.shape)).fill(1), [...m.shape])]));
      return ones;
    }
    return Object.fromEntries(inputs.map((m, i) => [m.name, new ort.Tensor('float32', dropoutMask(sizeOf(m.shape), p, seed, draw, i), [...m.shape])]));
  };
}
