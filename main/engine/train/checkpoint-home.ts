/**
 * Where a resumable step keeps its checkpoints: a folder that outlives the job, so that an interrupted or
 * cancelled run can be continued by a later job.
 *
 * A fresh run writes to `<job folder>/checkpoints/step-<n>/` (the job folder, `<home>/…/<id>-<name>/`,
 * is kept when a job fails or is cancelled as long as something is in it, and is not cleaned at start).
 * A resumed run (`resume.checkpoints` in its step) reads and keeps writing the folder it continues, so a
 * chain of resumes shares one folder. The folder is removed when the job that finishes the run succeeds:
 * the trained model is then in the output folder, and a checkpoint is about three times its size.
 * The job service records the folder as the experiment's 'checkpoints' artefact when the job starts.
 */
import { readdir, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import type { ResumeFrom } from '../../../preload/recipe.ts';

export const CHECKPOINTS_FOLDER = 'checkpoints';
/** The curve the train step keeps beside the checkpoints (train/step.ts), one point per line. */
export const CURVE_FILE = 'curve.jsonl';

/** The checkpoint folder of step `index` of a job whose folder is `workDir`. */
export function checkpointFolder(step: { resume?: ResumeFrom }, index: number, workDir: string): string {
  return path.resolve(step.resume?.checkpoints ?? path.join(workDir, CHECKPOINTS_FOLDER, `step-${index + 1}`));
}

/** Removes a finished run's checkpoints (and the `checkpoints` folder above them when it is left empty). */
export async function removeCheckpoints(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  const parent = path.dirname(dir);
  if (path.basename(parent) === CHECKPOINTS_FOLDER) await rmdir(parent).catch(() => {});
}

/**
 * Whether `dir` holds something a run can continue from: any entry but the curve beside the checkpoints
 * and hidden scratch folders. (The engine reads and checks the newest checkpoint itself.)
 */
export async function hasCheckpoint(dir: string): Promise<boolean> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return false;
  }
  return names.some((n) => !n.startsWith('.') && n !== CURVE_FILE);
}
