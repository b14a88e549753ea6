/**
 * The history schema as numbered migrations. Migration i (1-based) takes the database from schema i-1
 * to schema i; each runs in its own transaction and the schema number is kept in PRAGMA user_version.
 * Never edit a migration that has shipped: append a new one.
 */
import type Database from 'better-sqlite3';

export type Migration = string | ((db: Database.Database) => void);

const STATUSES = `'queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'`;

export const MIGRATIONS: readonly Migration[] = [
  // 1: experiments and everything hanging off them.
  `
  CREATE TABLE experiments (
    id            INTEGER PRIMARY KEY,
    created       TEXT    NOT NULL,
    started       TEXT,
    finished      TEXT,
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN (${STATUSES})),
    recipe_json   TEXT    NOT NULL,
    model_path    TEXT    NOT NULL,
    model_bytes   INTEGER,
    model_sha256  TEXT,
    duration_ms   INTEGER,
    error_json    TEXT,
    parent_id     INTEGER REFERENCES experiments(id) ON DELETE SET NULL,
    notes         TEXT    NOT NULL DEFAULT '',
    owner_pid     INTEGER
  ) STRICT;
  CREATE INDEX experiments_created ON experiments(created);
  CREATE INDEX experiments_status_created ON experiments(status, created);
  CREATE INDEX experiments_kind_created ON experiments(kind, created);
  CREATE INDEX experiments_name ON experiments(name);
  CREATE INDEX experiments_parent ON experiments(parent_id);

  CREATE TABLE metrics (
    id          INTEGER PRIMARY KEY,
    experiment  INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    value       REAL,
    unit        TEXT    NOT NULL DEFAULT '',
    subject     TEXT    NOT NULL DEFAULT 'model'
  ) STRICT;
  CREATE INDEX metrics_experiment ON metrics(experiment);

  CREATE TABLE artefacts (
    id          INTEGER PRIMARY KEY,
    experiment  INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    bytes       INTEGER
  ) STRICT;
  CREATE INDEX artefacts_experiment ON artefacts(experiment);

  CREATE TABLE events (
    experiment  INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    time        TEXT    NOT NULL,
    level       TEXT    NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
    text        TEXT    NOT NULL,
    PRIMARY KEY (experiment, seq)
  ) STRICT, WITHOUT ROWID;

  CREATE TABLE tags (
    experiment  INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    tag         TEXT    NOT NULL,
    PRIMARY KEY (experiment, tag)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX tags_tag ON tags(tag);

  CREATE TABLE details (
    experiment  INTEGER PRIMARY KEY REFERENCES experiments(id) ON DELETE CASCADE,
    json        TEXT    NOT NULL
  ) STRICT;

  CREATE TABLE recent_models (
    path         TEXT PRIMARY KEY,
    last_opened  TEXT NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX recent_models_last_opened ON recent_models(last_opened);
  `,
  // 2: evaluation results keyed by model content and evaluation settings, so an unchanged original is
  // not measured again for every experiment made from it.
  `
  CREATE TABLE evaluation_cache (
    model_sha256   TEXT NOT NULL,
    settings_hash  TEXT NOT NULL,
    metrics_json   TEXT NOT NULL,
    created        TEXT NOT NULL,
    PRIMARY KEY (model_sha256, settings_hash)
  ) STRICT, WITHOUT ROWID;
  `,
  // 3: which experiment stored a cache entry, so a cache hit can point at it.
  `
  ALTER TABLE evaluation_cache ADD COLUMN experiment INTEGER REFERENCES experiments(id) ON DELETE SET NULL;
  CREATE INDEX experiments_model_sha ON experiments(model_sha256, status, kind);
  `,
  // 4: the experiment workspace. Stars and pins; sweep groups; lineage (the experiment whose output a job
  // read as its input, found by the written model's content); full-text search over names, kinds, models,
  // notes and tags (FTS5, rowid = experiment id, kept current by triggers).
  `
  CREATE TABLE experiment_groups (
    id          INTEGER PRIMARY KEY,
    created     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL DEFAULT 'sweep',
    recipe_json TEXT    NOT NULL,
    grid_json   TEXT    NOT NULL DEFAULT '{}'
  ) STRICT;

  ALTER TABLE experiments ADD COLUMN starred INTEGER NOT NULL DEFAULT 0 CHECK (starred IN (0, 1));
  ALTER TABLE experiments ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1));
  ALTER TABLE experiments ADD COLUMN output_sha256 TEXT;
  ALTER TABLE experiments ADD COLUMN input_experiment INTEGER REFERENCES experiments(id) ON DELETE SET NULL;
  ALTER TABLE experiments ADD COLUMN group_id INTEGER REFERENCES experiment_groups(id) ON DELETE SET NULL;
  CREATE INDEX experiments_output_sha ON experiments(output_sha256);
  CREATE INDEX experiments_input ON experiments(input_experiment);
  CREATE INDEX experiments_group ON experiments(group_id);
  CREATE INDEX experiments_pinned_created ON experiments(pinned, created);
  CREATE INDEX experiments_starred_created ON experiments(starred, created);

  CREATE VIRTUAL TABLE experiments_fts USING fts5(name, kind, model, notes, tags, tokenize = 'unicode61 remove_diacritics 2');
  INSERT INTO experiments_fts(rowid, name, kind, model, notes, tags)
    SELECT e.id, e.name, e.kind, e.model_path, e.notes, COALESCE((SELECT group_concat(tag, ' ') FROM tags t WHERE t.experiment = e.id), '')
    FROM experiments e;
  CREATE TRIGGER experiments_fts_insert AFTER INSERT ON experiments BEGIN
    INSERT INTO experiments_fts(rowid, name, kind, model, notes, tags) VALUES (new.id, new.name, new.kind, new.model_path, new.notes, '');
  END;
  CREATE TRIGGER experiments_fts_update AFTER UPDATE OF name, kind, model_path, notes ON experiments BEGIN
    UPDATE experiments_fts SET name = new.name, kind = new.kind, model = new.model_path, notes = new.notes WHERE rowid = new.id;
  END;
  CREATE TRIGGER experiments_fts_delete AFTER DELETE ON experiments BEGIN
    DELETE FROM experiments_fts WHERE rowid = old.id;
  END;
  CREATE TRIGGER tags_fts_insert AFTER INSERT ON tags BEGIN
    UPDATE experiments_fts SET tags = (SELECT group_concat(tag, ' ') FROM tags WHERE experiment = new.experiment) WHERE rowid = new.experiment;
  END;
  CREATE TRIGGER tags_fts_delete AFTER DELETE ON tags BEGIN
    UPDATE experiments_fts SET tags = COALESCE((SELECT group_concat(tag, ' ') FROM tags WHERE experiment = old.experiment), '') WHERE rowid = old.experiment;
  END;
  `,
  // 5: the list shows pinned experiments first, newest next: a filter by kind, status or star reads its
  // page straight from an index in that order instead of sorting every match (thousands at 10,000).
  `
  CREATE INDEX experiments_kind_pinned_created ON experiments(kind, pinned, created);
  CREATE INDEX experiments_status_pinned_created ON experiments(status, pinned, created);
  CREATE INDEX experiments_starred_pinned_created ON experiments(starred, pinned, created);
  `,
  // 6: the full-text index keeps prefix indexes of 1 to 3 characters, so a search typed a letter at a
  // time ("g", "gp", "4 b…") reads one list per word instead of merging every word that starts so. The
  // triggers of migration 4 name the table and keep working with the new one.
  `
  DROP TABLE experiments_fts;
  CREATE VIRTUAL TABLE experiments_fts USING fts5(name, kind, model, notes, tags, tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3');
  INSERT INTO experiments_fts(rowid, name, kind, model, notes, tags)
    SELECT e.id, e.name, e.kind, e.model_path, e.notes, COALESCE((SELECT group_concat(tag, ' ') FROM tags t WHERE t.experiment = e.id), '')
    FROM experiments e;
  `,
  // 7: search inside words of names and model paths ("260K" finds "stories260K", which experiments_fts
  // indexed as one token): a trigram index of the two, kept current by triggers. Whatever an earlier
  // attempt left is dropped first, so the migration can run over it.
  `
  DROP TRIGGER IF EXISTS experiments_substring_insert;
  DROP TRIGGER IF EXISTS experiments_substring_update;
  DROP TRIGGER IF EXISTS experiments_substring_delete;
  DROP TABLE IF EXISTS experiments_substring;
  CREATE VIRTUAL TABLE experiments_substring USING fts5(name, model, tokenize = 'trigram remove_diacritics 1');
  INSERT INTO experiments_substring(rowid, name, model) SELECT id, name, model_path FROM experiments;
  CREATE TRIGGER experiments_substring_insert AFTER INSERT ON experiments BEGIN
    INSERT INTO experiments_substring(rowid, name, model) VALUES (new.id, new.name, new.model_path);
  END;
  CREATE TRIGGER experiments_substring_update AFTER UPDATE OF name, model_path ON experiments BEGIN
    UPDATE experiments_substring SET name = new.name, model = new.model_path WHERE rowid = new.id;
  END;
  CREATE TRIGGER experiments_substring_delete AFTER DELETE ON experiments BEGIN
    DELETE FROM experiments_substring WHERE rowid = old.id;
  END;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
