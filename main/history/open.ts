/**
 * The one place the history database is opened: folder checks, connection settings, migrations.
 * Every failure becomes a WhittleError that names the file or folder and says what to do.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import Database from 'better-sqlite3';
import { WhittleError } from '../engine/errors.ts';
import { historyPath } from './home.ts';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.ts';

export interface OpenedDatabase {
  db: Database.Database;
  path: string;
}

/** How long a statement waits for another connection's write lock before it fails with SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5000;

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function sqliteCode(e: unknown): string {
  return e && typeof e === 'object' && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : '';
}

function unwritableHome(home: string, e: unknown): WhittleError {
  return new WhittleError(
    'IO',
    `Whittle cannot keep its history in ${home} (${reason(e)}). Set WHITTLE_HOME to a folder you can write to, or fix the permissions of that folder.`,
    { path: home },
    { cause: e },
  );
}

export function openDatabase(home: string, busyTimeoutMs = BUSY_TIMEOUT_MS): OpenedDatabase {
  try {
    mkdirSync(home, { recursive: true });
    accessSync(home, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw unwritableHome(home, e);
  }

  const file = historyPath(home);
  let db: Database.Database;
  try {
    db = new Database(file, { timeout: busyTimeoutMs });
  } catch (e) {
    throw unwritableHome(home, e);
  }

  try {
    configure(db, file, busyTimeoutMs);
    migrate(db, file);
    return { db, path: file };
  } catch (e) {
    db.close();
    throw e;
  }
}

function configure(db: Database.Database, file: string, busyTimeoutMs: number): void {
  try {
    // The first statement reads the file header: a file that is not SQLite fails here.
    db.pragma('journal_mode = WAL');
  } catch (e) {
    const code = sqliteCode(e);
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      throw new WhittleError(
        'IO',
        `${file} is not a Whittle history database (SQLite: ${reason(e)}). Move the file away, or set WHITTLE_HOME to another folder.`,
        { path: file },
        { cause: e },
      );
    }
    if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM') || code.startsWith('SQLITE_IOERR')) {
      throw new WhittleError('IO', `Whittle cannot write ${file} (SQLite: ${reason(e)}). Set WHITTLE_HOME to a folder you can write to, or fix the file's permissions.`, { path: file }, { cause: e });
    }
    throw e;
  }
  db.pragma('foreign_keys = ON');
  // In WAL mode NORMAL syncs at checkpoints rather than on every commit. A crash of Whittle (or of the
  // engine) loses nothing and can never corrupt the file; only a power cut or OS crash can lose the last
  // few commits. That trade keeps frequent small writes (log lines, progress) from waiting on fsync.
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
}

function userVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

function newerSchema(file: string, found: number): WhittleError {
  return new WhittleError(
    'IO',
    `${file} was written by a newer Whittle (schema ${found}; this version knows ${SCHEMA_VERSION}). Update Whittle or set WHITTLE_HOME to another folder.`,
    { path: file, schema: found, known: SCHEMA_VERSION },
  );
}

function migrate(db: Database.Database, file: string): void {
  const found = userVersion(db);
  if (found > SCHEMA_VERSION) throw newerSchema(file, found);
  for (let target = found + 1; target <= SCHEMA_VERSION; target++) {
    const step = db.transaction(() => {
      // Another process may have migrated while we waited for the write lock.
      const now = userVersion(db);
      if (now >= target) return;
      const migration = MIGRATIONS[target - 1];
      if (typeof migration === 'string') db.exec(migration);
      else migration(db);
      db.pragma(`user_version = ${target}`);
    });
    try {
      step.immediate();
    } catch (e) {
      if (e instanceof WhittleError) throw e;
      throw new WhittleError(
        'IO',
        `Could not bring ${file} up to schema ${target} (${reason(e)}). If this file is not Whittle's history, move it away or set WHITTLE_HOME to another folder.`,
        { path: file, schema: target },
        { cause: e },
      );
    }
  }
}
