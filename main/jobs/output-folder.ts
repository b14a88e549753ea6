/**
 * Per-job output folders: `<outputRoot>/<experimentId>-<slug of the name>/`, and the clean-up of what
 * jobs that did not finish left there.
 */
import { readdirSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parsePartialName, processAlive } from '../engine/rewrite/output-folder.ts';
import { IMPORT_STAGING_TARGET } from '../history/bundle/import.ts';

const MAX_SLUG = 48;

export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, MAX_SLUG)
    .replace(/^-+|-+$/g, '');
  return slug || 'job';
}

export function jobFolderName(experimentId: number, name: string): string {
  return `${experimentId}-${slugify(name)}`;
}

/**
 * Removes what an interrupted job left in `dir`: partial output folders (`<name>.partial-<pid>-…`,
 * engine/rewrite/output-folder.ts) whose writing process is gone; only those of `target` when given.
 */
export function removeStalePartialsSync(dir: string, target?: string): string[] {
  let names: string[];
  try { names = readdirSync(dir); } catch { return []; }
  const removed: string[] = [];
  for (const name of names) {
    const p = parsePartialName(name);
    if (!p || (target !== undefined && p.target !== target) || processAlive(p.pid)) continue;
    rmSync(path.join(dir, name), { recursive: true, force: true });
    removed.push(path.join(dir, name));
  }
  return removed;
}

/** Removes `dir` when it is an empty folder. */
function removeIfEmpty(dir: string): boolean {
  try {
    if (readdirSync(dir).length > 0) return false;
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

/**
 * After a job that did not succeed: the partial folders its engine left (beside `outDir`, and in the job
 * folder) and, when nothing else is in it, the job folder itself.
 */
export function cleanFailedJobOutput(workDir: string, outDir: string | undefined): void {
  if (outDir) removeStalePartialsSync(path.dirname(path.resolve(outDir)), path.basename(path.resolve(outDir)));
  removeStalePartialsSync(workDir);
  removeIfEmpty(workDir);
}

const JOB_FOLDER = /^\d+-/;

/**
 * At start: in every job folder of `outputRoot`, the partial folders of engines that are gone (a job
 * interrupted by a crash or `kill -9`), then job folders left empty; and the staging folders of bundle
 * imports whose process is gone (history/bundle/import.ts). Returns the paths removed.
 */
export function cleanInterruptedOutput(outputRoot: string): string[] {
  let names: string[];
  try { names = readdirSync(outputRoot); } catch { return []; }
  const removed: string[] = removeStalePartialsSync(outputRoot, IMPORT_STAGING_TARGET);
  for (const name of names) {
    if (!JOB_FOLDER.test(name)) continue;
    const dir = path.join(outputRoot, name);
    removed.push(...removeStalePartialsSync(dir));
    if (removeIfEmpty(dir)) removed.push(dir);
  }
  return removed;
}

/**
 * At start: the partial folders that interrupted jobs left beside an output folder of the user's choosing
 * (a recipe's `output.dir`), for the experiments the history has just marked interrupted. Returns the
 * paths removed.
 */
export function cleanInterruptedCustomOutput(recipes: readonly unknown[]): string[] {
  const removed: string[] = [];
  for (const recipe of recipes) {
    const dir = (recipe as { output?: { dir?: unknown } } | null | undefined)?.output?.dir;
    if (typeof dir !== 'string' || dir === '') continue;
    const target = path.resolve(dir);
    removed.push(...removeStalePartialsSync(path.dirname(target), path.basename(target)));
  }
  return removed;
}
