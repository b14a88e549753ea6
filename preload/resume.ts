/**
 * Continuing an interrupted or cancelled run of a resumable step (a fine-tune) as a new job: the
 * experiment's recipe as it was submitted, with `resume` pointing each resumable step at the checkpoint
 * folder its job recorded. The CLI (`whittle train --resume ID`) and the history's Resume button both
 * use this. Only zod-based modules are imported, so main, preload and renderer share it.
 */
import type { Artefact, ExperimentStatus } from './contract.ts';
import { CHECKPOINTS_ARTEFACT, describeStep } from './methods.ts';
import { Recipe } from './recipe.ts';

/** The statuses a run can be continued from. */
export const RESUMABLE_STATUSES: readonly ExperimentStatus[] = ['interrupted', 'cancelled'];

export interface ResumableExperiment {
  id: number;
  status: ExperimentStatus;
  recipe: unknown;
  artefacts: readonly Artefact[];
}

export type ResumePlan =
  | { ok: true; recipe: Record<string, unknown>; checkpoints: string[] }
  | { ok: false; reason: string };

/**
 * The recipe that continues experiment `e`, or why it cannot be continued (not a run with checkpoints,
 * finished, still running, recorded by a version that kept no checkpoint folder). Whether the folder
 * still holds a checkpoint is for the caller to check (the engine refuses a folder without one).
 */
export function planResume(e: ResumableExperiment): ResumePlan {
  const parsed = Recipe.safeParse(e.recipe);
  if (!parsed.success) return { ok: false, reason: `Experiment ${e.id}'s recipe is no longer valid, so it cannot be continued.` };
  const resumable = parsed.data.steps.flatMap((s, i) => (describeStep(s).resumable ? [i] : []));
  if (resumable.length === 0) return { ok: false, reason: `Experiment ${e.id} is not a training run: it has no steps that write checkpoints, so there is nothing to resume.` };
  if (!RESUMABLE_STATUSES.includes(e.status)) {
    const why = e.status === 'done' ? 'it finished; start a new training on its output to train further'
      : e.status === 'running' || e.status === 'queued' ? `it is still ${e.status}` : 'it failed; fix what it reported and start it again';
    return { ok: false, reason: `Experiment ${e.id} cannot be resumed: ${why}. Only interrupted or cancelled runs continue from their checkpoints.` };
  }
  const folders = e.artefacts.filter((a) => a.kind === CHECKPOINTS_ARTEFACT).map((a) => a.path);
  if (folders.length < resumable.length) return { ok: false, reason: `Experiment ${e.id} recorded no checkpoint folder, so it cannot be resumed. Start the training again.` };
  const input = e.recipe as Record<string, unknown> & { steps: Record<string, unknown>[] };
  const steps = input.steps.map((s, i) => {
    const k = resumable.indexOf(i);
    return k < 0 ? s : { ...s, resume: { checkpoints: folders[k], experiment: e.id } };
  });
  return { ok: true, recipe: { ...input, steps }, checkpoints: folders.slice(0, resumable.length) };
}

/**
 * The recipe as a fresh run: `resume` removed from its resumable steps, so a re-run of a resumed
 * experiment starts over instead of continuing (or failing on checkpoints a finished run removed).
 */
export function withoutResume(recipe: unknown): unknown {
  const parsed = Recipe.safeParse(recipe);
  if (!parsed.success) return recipe;
  const input = recipe as Record<string, unknown> & { steps: Record<string, unknown>[] };
  if (!input.steps.some((s, i) => describeStep(parsed.data.steps[i]).resumable && s.resume !== undefined)) return recipe;
  return { ...input, steps: input.steps.map((s, i) => (describeStep(parsed.data.steps[i]).resumable ? Object.fromEntries(Object.entries(s).filter(([k]) => k !== 'resume')) : s)) };
}
