/**
 * SQLite failures while the history is used become typed IO errors that name the file and say what to do:
 * a full database (PRAGMA max_page_count caps it, as a full disk would) and a write lock held by a second
 * real connection past the busy timeout.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { WhittleError } from '../../../main/engine/errors.ts';
import { openHistory } from '../../../main/history/history.ts';
import { tempDir } from '../../helpers/fixtures.ts';

const scratch = tempDir('whittle-sqlite-errors-');
afterAll(() => scratch.cleanup());

function caught(fn: () => unknown): WhittleError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WhittleError);
    return e as WhittleError;
  }
  throw new Error('expected a failure');
}

const experiment = (recipe: unknown) => ({ name: 'e', kind: 'evaluate', recipe, modelPath: '/m.onnx', status: 'queued' as const });

describe('history failures', () => {
  it('SQLITE_FULL: IO saying the disk is full, and the history still reads', () => {
    const h = openHistory({ home: path.join(scratch.dir, 'full') });
    try {
      const first = h.createExperiment(experiment({ a: 1 }));
      const pages = h.db.pragma('page_count', { simple: true }) as number;
      h.db.pragma(`max_page_count = ${pages}`);
      const e = caught(() => h.createExperiment(experiment({ big: 'x'.repeat(200_000) })));
      expect(e.code).toBe('IO');
      expect(e.message).toBe(`The disk holding Whittle's history (${h.path}) is full. Free some space on it, or set WHITTLE_HOME to a folder on another disk, and try again.`);
      expect(e.details).toEqual({ path: h.path, sqlite: 'SQLITE_FULL' });
      expect(h.list().items.map((x) => x.id)).toEqual([first]);
    } finally {
      h.close();
    }
  });

  it('SQLITE_BUSY: IO naming the lock held by another connection past the busy timeout', () => {
    const home = path.join(scratch.dir, 'busy');
    const h = openHistory({ home, busyTimeoutMs: 300 });
    const other = new Database(h.path);
    try {
      other.exec('BEGIN IMMEDIATE'); // holds the write lock
      const e = caught(() => h.createExperiment(experiment({ a: 1 })));
      expect(e.code).toBe('IO');
      expect(e.message).toContain(`Whittle's history (${h.path}) stayed locked by another program for more than 0.3 s`);
      expect(e.message).toContain('Close other Whittle windows or commands that use the same history');
      expect(String(e.details?.sqlite)).toMatch(/^SQLITE_BUSY/);
      other.exec('ROLLBACK');
      expect(h.createExperiment(experiment({ a: 2 }))).toBeGreaterThan(0);
    } finally {
      other.close();
      h.close();
    }
  });
});
