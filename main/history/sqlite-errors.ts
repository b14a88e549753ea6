/**
 * SQLite failures while the history is in use, as typed IO errors that say what happened to which file
 * and what to do: the disk is full, another program holds the file locked past the busy timeout, the file
 * cannot be written or is damaged. Anything else passes through unchanged.
 */
import { WhittleError } from '../engine/errors.ts';

function sqliteCode(e: unknown): string {
  const code = e && typeof e === 'object' ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : '';
}

/** `e` as a WhittleError when it is a SQLite failure of `file`; otherwise `e` itself. */
export function historyError(e: unknown, file: string, busyTimeoutMs: number): unknown {
  const code = sqliteCode(e);
  if (!code) return e;
  const why = e instanceof Error ? e.message : String(e);
  const details = { path: file, sqlite: code };
  const io = (message: string) => new WhittleError('IO', message, details, { cause: e });
  if (code.startsWith('SQLITE_FULL')) {
    return io(`The disk holding Whittle's history (${file}) is full. Free some space on it, or set WHITTLE_HOME to a folder on another disk, and try again.`);
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return io(`Whittle's history (${file}) stayed locked by another program for more than ${busyTimeoutMs / 1000} s. Close other Whittle windows or commands that use the same history (or whatever has the file open), then try again.`);
  }
  if (code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_AUTH')) {
    return io(`Whittle cannot write its history (${file}): ${why}. Fix the permissions of the file and its folder, or set WHITTLE_HOME to a folder you can write to.`);
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return io(`Reading or writing Whittle's history (${file}) failed: ${why}. Check the disk, then try again; WHITTLE_HOME can point to another folder.`);
  }
  if (code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB')) {
    return io(`Whittle's history (${file}) is damaged (${why}). Move the file away to start a new history, or set WHITTLE_HOME to another folder.`);
  }
  return e;
}
