/**
 * A folder Whittle could not create (an output folder, a job's folder, the home folder) as a typed IO
 * error that says which folder, why (no permission, a read-only disk, a file where a folder should be,
 * a full disk) and what to do. Asynchronous: the main process calls it too.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from './errors.ts';

/** The nearest part of `folder`'s path that exists and is not a folder (a file in the way), if any. */
async function fileInTheWay(folder: string): Promise<string | null> {
  let p = path.resolve(folder);
  for (;;) {
    const st = await stat(p).catch(() => null);
    if (st) return st.isDirectory() ? null : p;
    const parent = path.dirname(p);
    if (parent === p) return null;
    p = parent;
  }
}

/** The nearest existing folder at or above `folder` (whose permissions decide). */
async function nearestExisting(folder: string): Promise<string> {
  let p = path.resolve(folder);
  for (;;) {
    if (await stat(p).then((s) => s.isDirectory(), () => false)) return p;
    const parent = path.dirname(p);
    if (parent === p) return p;
    p = parent;
  }
}

/**
 * The error for `e` thrown while creating `folder`. `what` names the folder ("the output folder"),
 * `instead` the way to choose another ("choose another output folder (--out)").
 */
export async function cannotCreateFolder(e: unknown, folder: string, what: string, instead: string): Promise<WhittleError> {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const target = path.resolve(folder);
  let why: string;
  let fix: string;
  const blocker = code === 'ENOTDIR' || code === 'EEXIST' ? await fileInTheWay(target) : null;
  if (blocker) {
    why = `${blocker} is a file, not a folder`;
    fix = `${instead[0].toUpperCase()}${instead.slice(1)}, or move that file away.`;
  } else if (code === 'EACCES' || code === 'EPERM') {
    const owner = await nearestExisting(target);
    why = `permission denied: ${owner} is not writable`;
    fix = `${instead[0].toUpperCase()}${instead.slice(1)}, or fix the permissions of ${owner}.`;
  } else if (code === 'EROFS') {
    why = 'the disk it is on is read-only';
    fix = `${instead[0].toUpperCase()}${instead.slice(1)} on a writable disk.`;
  } else if (code === 'ENOSPC') {
    why = 'the disk is full';
    fix = `Free some space, or ${instead}.`;
  } else {
    why = (e as Error)?.message ?? String(e);
    fix = `${instead[0].toUpperCase()}${instead.slice(1)}.`;
  }
  return new WhittleError('IO', `Whittle cannot create ${what} ${target}: ${why}. ${fix}`, { path: target, ...(code ? { errno: code } : {}) }, { cause: e });
}
