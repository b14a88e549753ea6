/**
 * The step interface (ARCHITECTURE seam 6): a step takes the current model and writes a new one
 * (or returns the same path when it changes nothing). Steps import this file; the registry imports the steps.
 *
 * Every step runner carries its description (preload/methods.ts): its traits (transform or analysis,
 * what it needs, its title), its options and the schema of the details it reports. The runner, the job
 * service, the history and the renderer read the traits from there, never from a list of step names.
 */
import type { Artefact } from '../../../preload/contract.ts';
import type { StepDescription } from '../../../preload/methods.ts';
import type { Recipe, Step } from '../../../preload/recipe.ts';
import { WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';

export type { CalibrationStatistic, StepKind, StepNeeds, StepTraits } from '../../../preload/methods.ts';
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
  /** What the step is (its traits) and what its details look like. */
  readonly description: StepDescription;
  run(input: StepInput<S>, ctx: JobContext): Promise<StepOutput>;
}

/** The step's details checked against its description's schema: a mismatch is a bug in the step, not in the input. */
export function checkStepDetails(runner: StepRunner, output: StepOutput, index: number): void {
  const checked = runner.description.details.safeParse(output.details);
  if (checked.success) return;
  const issues = checked.error.issues.map((i) => `${i.path.join('.') || '(details)'}: ${i.message}`);
  throw new WhittleError(
    'INTERNAL',
    `Step ${index + 1} of the recipe (${runner.description.title}) reported details that do not match its description: ${issues.slice(0, 5).join('; ')}. This is a bug in Whittle; please report it.`,
    { step: index, issues },
  );
}
