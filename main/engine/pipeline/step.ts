/**
 * The step interface (ARCHITECTURE seam 6): a step takes the current model and writes a new one
 * (or returns the same path when it changes nothing). Steps import this file; the registry imports the steps.
 */
import type { Artefact } from '../../../preload/contract.ts';
import type { Recipe, Step } from '../../../preload/recipe.ts';
import type { JobContext } from '../job-context.ts';
import type { PartialFolder } from '../rewrite/output-folder.ts';

export interface StepInput<S extends Step = Step> {
  /** The model this step starts from: the recipe's model or the previous step's output. */
  modelPath: string;
  recipe: Recipe;
  step: S;
  /** Position of the step in the recipe, from 0. */
  index: number;
}

export interface StepOutput {
  /** The model the step wrote (complete on disk), or the input path when it changed nothing. */
  modelPath: string;
  artefacts: Artefact[];
  details: Record<string, unknown>;
  /**
   * A folder the step wrote under its partial name (paths above point into it). The runner commits it
   * to its final name as the last act of a successful job, or discards it.
   */
  pending?: PartialFolder;
}

export interface StepRunner<S extends Step = Step> {
  run(input: StepInput<S>, ctx: JobContext): Promise<StepOutput>;
}
