/**
 * Will a training run fit in memory? Said up front, before the full-size probe and the first step.
 *
 * A small probe at (1, t₀) gives the bytes of every float activation of one forward. Activations split
 * into a part linear in the tokens and a part quadratic in the length (attention scores [.., t₀, t₀]):
 *   activations(B, T) ≈ B · (linear · T/t₀ + quadratic · (T/t₀)²)
 * A training step keeps the forward's activations for the backward and holds about as much again in
 * transient gradients at its peak; the weights cost float32 master + gradient + two AdamW moments.
 */
import os from 'node:os';
import { readFile } from 'node:fs/promises';
import { isFloatDtype, byteSize } from '../onnx/dtype.ts';
import type { MetaMap } from './autodiff/types.ts';
import { elementCountOf } from './graph-io.ts';

/** Peak bytes ≈ ACTIVATION_FACTOR × forward activations + 16 bytes per trainable weight + 4 per frozen one. */
export const ACTIVATION_FACTOR = 2.5;

export interface ActivationProfile {
  /** The probe's length t₀. */
  length: number;
  linearBytes: number;
  quadraticBytes: number;
}

/** Splits the float tensors of a (1, t₀) probe into linear and quadratic parts. */
export function activationProfile(meta: MetaMap, produced: Iterable<string>, length: number): ActivationProfile {
  let linear = 0, quadratic = 0;
  for (const name of produced) {
    const m = meta.get(name);
    if (!m || !isFloatDtype(m.dtype)) continue;
    const bytes = byteSize(m.dtype, elementCountOf(m.shape));
    const lengthAxes = m.shape.filter((d) => d === length).length;
    if (lengthAxes >= 2 && length > 1) quadratic += bytes;
    else linear += bytes;
  }
  return { length, linearBytes: linear, quadraticBytes: quadratic };
}

export function estimatePeakBytes(profile: ActivationProfile, batch: number, length: number, trainable: number, frozen: number): number {
  const r = length / profile.length;
  const activations = batch * (profile.linearBytes * r + profile.quadraticBytes * r * r);
  return ACTIVATION_FACTOR * activations + 16 * trainable + 4 * frozen;
}

/** Memory the system can give (MemAvailable on Linux, free memory elsewhere). */
export async function availableMemory(): Promise<number> {
  try {
    const info = await readFile('/proc/meminfo', 'utf8');
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(info);
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return os.freemem();
}

/** The largest batch (then the largest length, by halving) whose estimate fits in `budget`. */
export function suggestShape(profile: ActivationProfile, batch: number, length: number, trainable: number, frozen: number, budget: number): { batch: number; length: number } | null {
  for (let b = batch; b >= 1; b--) if (estimatePeakBytes(profile, b, length, trainable, frozen) <= budget) return { batch: b, length };
  for (let t = Math.floor(length / 2); t >= 2; t = Math.floor(t / 2)) if (estimatePeakBytes(profile, 1, t, trainable, frozen) <= budget) return { batch: 1, length: t };
  return null;
}
