/**
 * `distill.plan`: what a distillation would start from, before anything runs — the student's blocks,
 * parameters and model bytes beside the teacher's (describeStudent: the same block cut done in memory), or
 * a brought student's check against the teacher (vocabulary, a decoder the engine can train); and the
 * paragraphs the evaluation text shares with the training text (the warning the result will list).
 * Runs on the inspection worker: it reads models and texts.
 */
import type { CallParams, DistillPlan } from '../../preload/contract.ts';
import { overlapWarning, textOverlap } from '../engine/data/overlap.ts';
import { checkStudentCompatible, describeStudent } from '../engine/distill/student.ts';
import { WhittleError } from '../engine/errors.ts';

export type DistillPlanParams = CallParams<'distill.plan'>;

export async function planDistill(p: DistillPlanParams): Promise<DistillPlan> {
  if ((p.blocks === undefined) === (p.student === undefined)) {
    throw new WhittleError('INVALID_INPUT', "Say what the student is: some of the teacher's blocks, or a student model you bring.");
  }
  const student = p.blocks !== undefined ? await describeStudent(p.teacher, p.blocks) : null;
  const check = p.student !== undefined ? await checkStudentCompatible(p.teacher, p.student, p.tokenizer) : null;
  let overlap: DistillPlan['overlap'] = null;
  const warnings: string[] = [];
  if (p.text !== undefined && p.evalText !== undefined) {
    overlap = await textOverlap(p.text, p.evalText);
    const w = overlapWarning(overlap, p.text, p.evalText);
    if (w) warnings.push(w);
  }
  return { student, check, overlap, warnings };
}
