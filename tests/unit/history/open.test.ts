import { writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WhittleError } from '../../../main/engine/errors.ts';
import { History, openHistory, resolveHome, SCHEMA_VERSION } from '../../../main/history/index.ts';
import { MIGRATIONS } from '../../../main/history/migrations.ts';
import { tempDir } from '../../helpers/fixtures.ts';

let scratch: ReturnType<typeof tempDir>;
beforeEach(() => { scratch = tempDir('whittle-history-'); });
afterEach(() => scratch.cleanup());

function caught(fn: () => unknown): WhittleError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WhittleError);
    return e as WhittleError;
  }
  throw new Error('expected a WhittleError');
}

const experiment = { name: 'e', kind: 'evaluate', recipe: { model: { path: '/m.onnx' } }, modelPath: '/m.onnx' };

describe('openHistory', () => {
  it('upgrades a database written by an earlier schema in place, keeping its rows', () => {
    // A history as Whittle with the first two migrations left it, holding an experiment and a cache entry.
    const file = path.join(scratch.dir, 'history.db');
    const old = new Database(file);
    for (const m of MIGRATIONS.slice(0, 2)) old.exec(m as string);
    old.pragma('user_version = 2');
    old.prepare(`INSERT INTO evaluation_cache (model_sha256, settings_hash, metrics_json, created) VALUES ('abc', 'def', '[{"name":"perplexity","value":4.2,"unit":"","subject":"model"}]', '2026-01-01T00:00:00Z')`).run();
    old.close();

    const h = openHistory({ home: scratch.dir });
    try {
      expect(h.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(h.cacheGet('abc', 'def')).toEqual({ metrics: [{ name: 'perplexity', value: 4.2, unit: '', subject: 'model' }], created: '2026-01-01T00:00:00Z', from: null });
      const id = h.createExperiment(experiment);
      h.cachePut('abc', 'def', [{ name: 'perplexity', value: 4.3, unit: '', subject: 'model' }], id);
      expect(h.cacheGet('abc', 'def')?.from).toBe(id);
      // Deleting the experiment keeps the measurement but forgets who made it.
      h.finish(id, 'done');
      h.delete(id);
      expect(h.cacheGet('abc', 'def')?.from).toBeNull();
    } finally {
      h.close();
    }
  });


  it('creates the schema from an empty folder: every table STRICT, user_version recorded', () => {
    const home = path.join(scratch.dir, 'nested', 'home');
    const h = openHistory({ home });
    try {
      expect(h.path).toBe(path.join(home, 'history.db'));
      expect(existsSync(h.path)).toBe(true);
      expect(h.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      const tables = h.db.prepare<{ name: string; strict: number }>(`SELECT name, strict FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite_%'`).all();
      const names = tables.map((t) => t.name).sort();
      expect(names).toEqual(['artefacts', 'details', 'evaluation_cache', 'events', 'experiment_groups', 'experiments', 'metrics', 'recent_models', 'tags']);
      const fts = h.db.prepare<{ name: string }>(`SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'virtual'`).all();
      expect(fts.map((t) => t.name)).toEqual(['experiments_fts', 'experiments_substring']);
      for (const t of tables) expect(t.strict, t.name).toBe(1);
    } finally {
      h.close();
    }
  });

  it('turns on WAL, foreign keys, NORMAL sync and a busy timeout', () => {
    const h = openHistory({ home: scratch.dir });
    try {
      expect(h.db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(h.db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(h.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
      expect(h.db.pragma('busy_timeout', { simple: true })).toBeGreaterThan(0);
      // Foreign keys really are enforced.
      expect(() => h.addMetrics(12345, [{ name: 'x', value: 1, unit: '', subject: 'model' }])).toThrow(/FOREIGN KEY/);
    } finally {
      h.close();
    }
  });

  it('re-opens an existing history without migrating again and keeps its rows', () => {
    const a = openHistory({ home: scratch.dir });
    const id = a.createExperiment(experiment);
    a.finish(id, 'done', null, 10);
    a.close();
    const b = openHistory({ home: scratch.dir });
    try {
      expect(b.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(b.get(id).status).toBe('done');
      expect(b.list().total).toBe(1);
    } finally {
      b.close();
    }
  });

  it('refuses a history written by a newer Whittle', () => {
    const raw = new Database(path.join(scratch.dir, 'history.db'));
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    const e = caught(() => openHistory({ home: scratch.dir }));
    expect(e.code).toBe('IO');
    expect(e.message).toBe(
      `${path.join(scratch.dir, 'history.db')} was written by a newer Whittle (schema ${SCHEMA_VERSION + 1}; this version knows ${SCHEMA_VERSION}). Update Whittle or set WHITTLE_HOME to another folder.`,
    );
  });

  it('says which folder cannot be used when the home cannot be created (even as root)', () => {
    const file = path.join(scratch.dir, 'a-file');
    writeFileSync(file, 'not a folder');
    const home = path.join(file, 'sub');
    const e = caught(() => openHistory({ home }));
    expect(e.code).toBe('IO');
    expect(e.message).toMatch(new RegExp(`^Whittle cannot keep its history in ${home.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(.*ENOTDIR.*\\)\\. Set WHITTLE_HOME to a folder you can write to, or fix the permissions of that folder\\.$`));
    expect(e.details).toEqual({ path: home });
  });

  it('says so when history.db is not a database', () => {
    const file = path.join(scratch.dir, 'history.db');
    writeFileSync(file, 'This is a plain text file that happens to be called history.db, long enough to have a header.\n'.repeat(20));
    const e = caught(() => openHistory({ home: scratch.dir }));
    expect(e.code).toBe('IO');
    expect(e.message).toBe(`${file} is not a Whittle history database (SQLite: file is not a database). Move the file away, or set WHITTLE_HOME to another folder.`);
  });

  it('marks experiments left queued or running as interrupted, with the reason', () => {
    const a = openHistory({ home: scratch.dir });
    const running = a.createExperiment(experiment);
    a.markRunning(running);
    const queued = a.createExperiment(experiment);
    const done = a.createExperiment(experiment);
    a.finish(done, 'done', null, 5);
    a.close();

    const b = openHistory({ home: scratch.dir });
    try {
      expect(b.interruptedAtOpen).toBe(2);
      const r = b.get(running);
      expect(r.status).toBe('interrupted');
      expect(r.error?.message).toMatch(/stopped while this experiment was running/);
      expect(b.get(queued).status).toBe('interrupted');
      expect(b.get(queued).error?.message).toMatch(/before this queued experiment could start/);
      expect(b.get(done).status).toBe('done');
      expect(b.get(done).error).toBeNull();
    } finally {
      b.close();
    }
  });

  it('leaves a running experiment alone while the process that owns it is alive', () => {
    const a = openHistory({ home: scratch.dir });
    const id = a.createExperiment(experiment);
    a.markRunning(id);
    // Pretend another live process (our parent, the test runner) owns the row.
    a.db.prepare('UPDATE experiments SET owner_pid = ? WHERE id = ?').run(process.ppid, id);
    a.close();
    const b = openHistory({ home: scratch.dir });
    try {
      expect(b.interruptedAtOpen).toBe(0);
      expect(b.get(id).status).toBe('running');
    } finally {
      b.close();
    }
  });

  it('is the History class', () => {
    const h = openHistory({ home: scratch.dir });
    expect(h).toBeInstanceOf(History);
    h.close();
  });
});

describe('resolveHome', () => {
  it('prefers WHITTLE_HOME', () => {
    expect(resolveHome({ WHITTLE_HOME: '/srv/w' }, 'linux', '/home/u')).toBe('/srv/w');
  });
  it('uses the platform user-data folder otherwise', () => {
    expect(resolveHome({}, 'linux', '/home/u')).toBe('/home/u/.config/Whittle');
    expect(resolveHome({ XDG_CONFIG_HOME: '/x' }, 'linux', '/home/u')).toBe('/x/Whittle');
    expect(resolveHome({}, 'darwin', '/Users/u')).toBe('/Users/u/Library/Application Support/Whittle');
    expect(resolveHome({ APPDATA: 'C:\\Users\\u\\AppData\\Roaming' }, 'win32', 'C:\\Users\\u')).toBe('C:\\Users\\u\\AppData\\Roaming\\Whittle');
  });
});
