/**
 * The Quantize wizard's sensitivity measurements, remembered by their inputs: coming back to the Weights
 * step (or to the wizard, in the same tab) with the same model, method, bits, block size, calibration and
 * sample count shows the measurement already made instead of measuring again. What the measurement writes
 * into the step (keep patterns, 8-bit overrides) is not an input: applying its top k keeps it on screen.
 */
import type { QuantizeForm } from './quantize-form.ts';
import { buildSensitivityRecipe } from './quantize-form.ts';

export interface SensitivityRun { jobId: string; experimentId: number }

const STORAGE_KEY = 'whittle.sensitivity-runs';
/** The newest runs kept (one per set of inputs). */
const KEEP = 20;

/** What a sensitivity measurement depends on, as one string. */
export function sensitivityKey(form: QuantizeForm, samples: number | string): string {
  const recipe = buildSensitivityRecipe(form, samples);
  const step = recipe.steps?.[0] as { quantize: Record<string, unknown> } & Record<string, unknown>;
  const { keep: _keep, overrides: _overrides, ...quantize } = step.quantize;
  return JSON.stringify({ model: recipe.model, tokenizer: recipe.tokenizer ?? null, step: { ...step, quantize } });
}

function storage(): Storage | null {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage;
  } catch {
    return null;
  }
}

export function loadSensitivityRuns(): Record<string, SensitivityRun> {
  try {
    const raw = storage()?.getItem(STORAGE_KEY);
    const parsed: unknown = raw ? JSON.parse(raw) : {};
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as Record<string, SensitivityRun> : {};
  } catch {
    return {};
  }
}

/** Adds a run under its inputs' key (the oldest beyond KEEP dropped) and stores the map for this tab. */
export function rememberSensitivityRun(runs: Record<string, SensitivityRun>, key: string, run: SensitivityRun): Record<string, SensitivityRun> {
  const entries = Object.entries(runs).filter(([k]) => k !== key);
  const next = Object.fromEntries([...entries.slice(-(KEEP - 1)), [key, run]]);
  try {
    storage()?.setItem(STORAGE_KEY, JSON.stringify(next));
  } catch { /* a full or disabled storage only means measuring again after a reload */ }
  return next;
}
