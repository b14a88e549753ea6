/**
 * What a distillation checks before any work (the `distill` step, `whittle distill` and the wizard):
 * the teacher, the student (its blocks are the teacher's; a brought student has the teacher's
 * vocabulary), and whether the evaluation text is inside the training text, which is not an error but a
 * warning listed with the result.
 */
import path from 'node:path';
import type { DistillStep, Recipe } from '../../../preload/recipe.ts';
import { overlapWarning, textOverlap } from '../data/overlap.ts';
import { checkStudentCompatible, describeStudent, type StudentCheck, type StudentSize } from './student.ts';
import type { StudentSpec } from './types.ts';

/** The teacher of a distill step: its own, else the recipe's model. */
export function teacherOf(step: Pick<DistillStep, 'teacher'>, recipe: Pick<Recipe, 'model'>): string {
  return path.resolve(step.teacher ?? recipe.model.path);
}

/** The engine's student of a distill step; `{ from: 'input' }` is the model the step receives. */
export function studentOf(step: Pick<DistillStep, 'student'>, inputModel: string): StudentSpec {
  const s = step.student;
  if ('blocks' in s) return { kind: 'blocks', blocks: [...s.blocks] };
  if ('model' in s) return { kind: 'model', path: path.resolve(s.model) };
  return { kind: 'model', path: path.resolve(inputModel) };
}

export interface DistillPreflight {
  /** A student of the teacher's blocks: its size before it is built. */
  size: StudentSize | null;
  /** A brought student: the vocabulary and block counts both share. */
  check: StudentCheck | null;
  warnings: string[];
}

/**
 * The warnings of training on `trainText` while evaluating on the held-out and comparison texts: one for
 * each of them the training text holds paragraphs of (the same text named twice warns once).
 */
export async function overlapWarnings(trainText: string, evalTexts: readonly (string | undefined)[], signal?: AbortSignal): Promise<string[]> {
  const texts = [...new Set(evalTexts.filter((t): t is string => t !== undefined).map((t) => path.resolve(t)))];
  const warnings: string[] = [];
  for (const t of texts) {
    const w = overlapWarning(await textOverlap(trainText, t, signal), trainText, t);
    if (w) warnings.push(w);
  }
  return warnings;
}

/**
 * Checks a distillation before any work: INVALID_INPUT (or UNSUPPORTED_MODEL) for a student block outside
 * the teacher's blocks, a teacher whose blocks cannot be mapped, a student with another vocabulary; and
 * the overlap warnings of its texts against the held-out text and the recipe's evaluation text.
 */
export async function preflightDistill(
  args: { teacher: string; student: StudentSpec; tokenizer?: string; text: string; evalTexts: readonly (string | undefined)[] },
  signal?: AbortSignal,
): Promise<DistillPreflight> {
  const size = args.student.kind === 'blocks' ? await describeStudent(args.teacher, args.student.blocks) : null;
  const check = args.student.kind === 'model' ? await checkStudentCompatible(args.teacher, args.student.path, args.tokenizer) : null;
  const warnings = await overlapWarnings(args.text, args.evalTexts, signal);
  return { size, check, warnings };
}
