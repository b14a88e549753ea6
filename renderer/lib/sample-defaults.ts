/**
 * What a wizard fills in from the bundled sample: its texts and tokenizer, for the sample model only. A
 * model of the user's own gets no default text (the sample's TinyStories would measure the wrong thing).
 */
import type { Sample } from '../../preload/contract.ts';

/** The fields of a wizard form the sample can fill. */
export interface SampleFillable {
  modelPath: string;
  tokenizerPath: string;
  textPath: string;
  calibText: string;
}

/** The sample's calibration text: one that does not overlap its evaluation text, when the sample has one. */
export const calibrationTextOf = (s: Sample): string => s.calibrationTextPath ?? s.textPath;

/**
 * Fill what the user has not typed, for the sample model only: its texts and tokenizer. A model of the
 * user's own gets no default text (the sample's TinyStories would measure the wrong thing): the form asks.
 */
export function withSampleDefaults<F extends SampleFillable>(form: F, samples: readonly Sample[]): F {
  const match = samples.find((s) => s.modelPath === form.modelPath.trim());
  if (!match) return form;
  const next = { ...form };
  if (!next.textPath) next.textPath = match.textPath;
  if (!next.calibText) next.calibText = calibrationTextOf(match);
  if (!next.tokenizerPath) next.tokenizerPath = match.tokenizerPath;
  return next;
}

/** Leaving the sample model for another: the sample's own texts, filled in for it, are cleared (the form asks again). */
export function withoutSampleTexts<F extends SampleFillable>(next: F, previousModel: string, samples: readonly Sample[]): F {
  const left = samples.find((s) => s.modelPath === previousModel.trim());
  if (!left || samples.some((s) => s.modelPath === next.modelPath.trim())) return next;
  return {
    ...next,
    textPath: next.textPath === left.textPath ? '' : next.textPath,
    calibText: next.calibText === calibrationTextOf(left) ? '' : next.calibText,
  };
}
