/**
 * The experiment history: one SQLite file, synchronous repository calls returning the contract's shapes.
 * Opened in exactly one place (openHistory → openDatabase).
 */
import { stat } from 'node:fs/promises';
import type Database from 'better-sqlite3';
import type {
  Artefact, ErrorShape, ExperimentDetail, ExperimentStatus, ExperimentSummary, KindCount, LineageTree, LogLine, Metric, RecentModel, TagCount,
} from '../../preload/contract.ts';
import { WhittleError } from '../engine/errors.ts';
import { BUSY_TIMEOUT_MS, openDatabase } from './open.ts';
import { historyError } from './sqlite-errors.ts';
import { pickHeadline } from './headline.ts';
import { createGroup, groupRecord, joinGroup, recentGroups, type GroupRecord, type NewGroup } from './groups.ts';
import { kindCounts, listRows, tagCounts, tagsByExperiment, type ListQuery } from './list.ts';
import { lineageTree, linkInput, recordOutput } from './lineage.ts';

export interface NewExperiment {
  name: string;
  kind: string;
  /** Stored verbatim (as JSON) so the experiment can be re-run. */
  recipe: unknown;
  modelPath: string;
  modelBytes?: number | null;
  modelSha256?: string | null;
  /** The experiment this one was made from (e.g. the evaluation of the original). */
  parentId?: number | null;
  status?: 'queued' | 'running';
  notes?: string;
  tags?: string[];
}

export type FinalStatus = 'done' | 'failed' | 'cancelled' | 'interrupted';

export type { ListQuery } from './list.ts';

export interface ExperimentUpdate {
  name?: string;
  notes?: string;
  tags?: string[];
  starred?: boolean;
  pinned?: boolean;
}

export interface NewLogLine {
  level: LogLine['level'];
  text: string;
  time?: string;
}

export interface CachedEvaluation {
  metrics: Metric[];
  created: string;
  /** The experiment that measured them (null once it is deleted). */
  from: number | null;
}

interface ExperimentRow {
  id: number;
  created: string;
  started: string | null;
  finished: string | null;
  name: string;
  kind: string;
  status: ExperimentStatus;
  recipe_json: string;
  model_path: string;
  model_bytes: number | null;
  model_sha256: string | null;
  duration_ms: number | null;
  error_json: string | null;
  parent_id: number | null;
  notes: string;
  owner_pid: number | null;
  starred: number;
  pinned: number;
  group_id: number | null;
}

interface MetricRow { experiment: number; name: string; value: number | null; unit: string; subject: string }

const now = (): string => new Date().toISOString();

function toMetric(r: MetricRow): Metric {
  // SQLite has no NaN: it is stored as NULL.
  return { name: r.name, value: r.value ?? Number.NaN, unit: r.unit, subject: r.subject };
}

function notFound(id: number): WhittleError {
  return new WhittleError('NOT_FOUND', `There is no experiment ${id} in the history. It may have been deleted.`, { id });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class History {
  readonly db: Database.Database;
  /** The database file. */
  readonly path: string;
  readonly home: string;
  /** Experiments found 'queued' or 'running' at open and marked 'interrupted'. */
  readonly interruptedAtOpen: number;
  /** Their ids (the job service cleans what they left in their output folders). */
  readonly interruptedIdsAtOpen: readonly number[];

  constructor(home: string, busyTimeoutMs = BUSY_TIMEOUT_MS) {
    const opened = openDatabase(home, busyTimeoutMs);
    this.db = opened.db;
    this.path = opened.path;
    this.home = home;
    typedFailures(this, opened.path, busyTimeoutMs);
    this.interruptedIdsAtOpen = this.markInterrupted();
    this.interruptedAtOpen = this.interruptedIdsAtOpen.length;
  }

  /**
   * Rows left 'queued' or 'running' by a Whittle that stopped without finishing them. A row owned by
   * another live process (the CLI running beside the app on the same history) is left alone.
   */
  private markInterrupted(): number[] {
    const rows = this.db.prepare<{ id: number; status: string; owner_pid: number | null }>(
      `SELECT id, status, owner_pid FROM experiments WHERE status IN ('queued', 'running')`,
    ).all();
    const stale = rows.filter((r) => r.owner_pid === null || r.owner_pid === process.pid || !isAlive(r.owner_pid));
    if (stale.length === 0) return [];
    const update = this.db.prepare(`UPDATE experiments SET status = 'interrupted', error_json = ? WHERE id = ? AND status IN ('queued', 'running')`);
    this.db.transaction(() => {
      for (const r of stale) {
        const error: ErrorShape = {
          code: 'CANCELLED',
          message: r.status === 'running'
            ? 'Whittle stopped while this experiment was running, so it never finished. Run the recipe again to repeat it.'
            : 'Whittle stopped before this queued experiment could start. Run the recipe again to repeat it.',
        };
        update.run(JSON.stringify(error), r.id);
      }
    })();
    return stale.map((r) => r.id);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Runs `fn` in one transaction (nested calls become savepoints). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // ── experiments ────────────────────────────────────────────────────────────────────────────────────

  createExperiment(e: NewExperiment): number {
    const create = this.db.transaction((): number => {
      const info = this.db.prepare(
        `INSERT INTO experiments (created, started, name, kind, status, recipe_json, model_path, model_bytes, model_sha256, parent_id, notes, owner_pid)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        now(), e.status === 'running' ? now() : null, e.name, e.kind, e.status ?? 'queued', JSON.stringify(e.recipe ?? null), e.modelPath,
        e.modelBytes ?? null, e.modelSha256 ?? null, e.parentId ?? null, e.notes ?? '', process.pid,
      );
      const id = Number(info.lastInsertRowid);
      if (e.tags) this.replaceTags(id, e.tags);
      return id;
    });
    return create();
  }

  markRunning(id: number): void {
    const info = this.db.prepare(`UPDATE experiments SET status = 'running', started = ?, owner_pid = ? WHERE id = ?`).run(now(), process.pid, id);
    if (info.changes === 0) throw notFound(id);
  }

  finish(id: number, status: FinalStatus, error: ErrorShape | null = null, durationMs: number | null = null): void {
    const info = this.db.prepare(`UPDATE experiments SET status = ?, finished = ?, error_json = ?, duration_ms = ? WHERE id = ?`)
      .run(status, now(), error ? JSON.stringify(error) : null, durationMs === null ? null : Math.round(durationMs), id);
    if (info.changes === 0) throw notFound(id);
  }

  addMetrics(id: number, metrics: readonly Metric[]): void {
    if (metrics.length === 0) return;
    const insert = this.db.prepare(`INSERT INTO metrics (experiment, name, value, unit, subject) VALUES (?, ?, ?, ?, ?)`);
    this.db.transaction(() => {
      for (const m of metrics) insert.run(id, m.name, Number.isNaN(m.value) ? null : m.value, m.unit, m.subject);
    })();
  }

  addArtefacts(id: number, artefacts: readonly Artefact[]): void {
    if (artefacts.length === 0) return;
    const insert = this.db.prepare(`INSERT INTO artefacts (experiment, kind, path, bytes) VALUES (?, ?, ?, ?)`);
    this.db.transaction(() => {
      for (const a of artefacts) insert.run(id, a.kind, a.path, a.bytes);
    })();
  }

  /** Appends log lines with consecutive per-experiment sequence numbers; returns the last one (0 if none). */
  appendLog(id: number, lines: NewLogLine | readonly NewLogLine[]): number {
    const list = Array.isArray(lines) ? lines : [lines as NewLogLine];
    const append = this.db.transaction((): number => {
      let seq = this.db.prepare<number>(`SELECT COALESCE(MAX(seq), 0) FROM events WHERE experiment = ?`).pluck().get(id) ?? 0;
      const insert = this.db.prepare(`INSERT INTO events (experiment, seq, time, level, text) VALUES (?, ?, ?, ?, ?)`);
      for (const l of list) insert.run(id, ++seq, l.time ?? now(), l.level, l.text);
      return seq;
    });
    return append();
  }

  setDetails(id: number, details: Record<string, unknown>): void {
    this.db.prepare(`INSERT INTO details (experiment, json) VALUES (?, ?) ON CONFLICT (experiment) DO UPDATE SET json = excluded.json`)
      .run(id, JSON.stringify(details));
  }

  status(id: number): ExperimentStatus {
    const s = this.db.prepare<ExperimentStatus>(`SELECT status FROM experiments WHERE id = ?`).pluck().get(id);
    if (s === undefined) throw notFound(id);
    return s;
  }

  list(query: ListQuery = {}): { items: ExperimentSummary[]; total: number } {
    const { rows, total } = listRows<ExperimentRow>(this.db, query);
    const metricsById = new Map<number, Metric[]>();
    if (rows.length) {
      const metricRows = this.db.prepare<MetricRow>(
        `SELECT experiment, name, value, unit, subject FROM metrics WHERE experiment IN (SELECT value FROM json_each(?)) ORDER BY id`,
      ).all(JSON.stringify(rows.map((r) => r.id)));
      for (const m of metricRows) {
        let list = metricsById.get(m.experiment);
        if (!list) metricsById.set(m.experiment, (list = []));
        list.push(toMetric(m));
      }
    }
    const tagsById = tagsByExperiment(this.db, rows.map((r) => r.id));
    return { items: rows.map((r) => this.summary(r, pickHeadline(metricsById.get(r.id) ?? []), tagsById.get(r.id) ?? [])), total };
  }

  /** Every kind of job Whittle writes, with how many experiments of each the history holds. */
  kinds(): KindCount[] {
    return kindCounts(this.db);
  }

  /** The tags in use, most used first. */
  tags(limit = 100): TagCount[] {
    return tagCounts(this.db, limit);
  }

  private summary(r: ExperimentRow, headline: Metric[], tags: string[]): ExperimentSummary {
    return {
      id: r.id, name: r.name, kind: r.kind, status: r.status, created: r.created, finished: r.finished,
      modelPath: r.model_path, modelBytes: r.model_bytes, headline, starred: r.starred === 1, pinned: r.pinned === 1, tags,
    };
  }

  get(id: number): ExperimentDetail {
    const r = this.db.prepare<ExperimentRow>(`SELECT * FROM experiments WHERE id = ?`).get(id);
    if (!r) throw notFound(id);
    const metrics = this.db.prepare<MetricRow>(`SELECT experiment, name, value, unit, subject FROM metrics WHERE experiment = ? ORDER BY id`).all(id).map(toMetric);
    const artefacts = this.db.prepare<Artefact>(`SELECT kind, path, bytes FROM artefacts WHERE experiment = ? ORDER BY id`).all(id);
    const log = this.db.prepare<LogLine>(`SELECT seq, time, level, text FROM events WHERE experiment = ? ORDER BY seq`).all(id);
    const tags = this.db.prepare<string>(`SELECT tag FROM tags WHERE experiment = ? ORDER BY tag`).pluck().all(id);
    const detailsJson = this.db.prepare<string>(`SELECT json FROM details WHERE experiment = ?`).pluck().get(id);
    return {
      ...this.summary(r, pickHeadline(metrics), tags),
      recipe: JSON.parse(r.recipe_json),
      modelSha256: r.model_sha256,
      durationMs: r.duration_ms,
      error: r.error_json ? (JSON.parse(r.error_json) as ErrorShape) : null,
      metrics,
      artefacts,
      log,
      tags,
      notes: r.notes,
      details: detailsJson ? (JSON.parse(detailsJson) as Record<string, unknown>) : {},
      ...(r.group_id !== null && r.group_id !== undefined ? { groupId: r.group_id } : {}),
    };
  }

  /** Deletes an experiment and everything recorded for it (not its output files). */
  delete(id: number): void {
    const status = this.status(id);
    if (status === 'running' || status === 'queued') {
      throw new WhittleError('INVALID_INPUT', `Experiment ${id} is ${status}. Cancel it first, then delete it.`, { id, status });
    }
    this.db.prepare(`DELETE FROM experiments WHERE id = ?`).run(id);
  }

  update(id: number, change: ExperimentUpdate): ExperimentDetail {
    this.db.transaction(() => {
      this.status(id);
      if (change.name !== undefined) {
        const name = change.name.trim();
        if (!name) throw new WhittleError('INVALID_INPUT', 'An experiment name cannot be empty.', { id });
        this.db.prepare(`UPDATE experiments SET name = ? WHERE id = ?`).run(name, id);
      }
      if (change.notes !== undefined) this.db.prepare(`UPDATE experiments SET notes = ? WHERE id = ?`).run(change.notes, id);
      if (change.tags !== undefined) this.replaceTags(id, change.tags);
      if (change.starred !== undefined) this.db.prepare(`UPDATE experiments SET starred = ? WHERE id = ?`).run(change.starred ? 1 : 0, id);
      if (change.pinned !== undefined) this.db.prepare(`UPDATE experiments SET pinned = ? WHERE id = ?`).run(change.pinned ? 1 : 0, id);
    })();
    return this.get(id);
  }

  private replaceTags(id: number, tags: readonly string[]): void {
    this.db.prepare(`DELETE FROM tags WHERE experiment = ?`).run(id);
    const insert = this.db.prepare(`INSERT OR IGNORE INTO tags (experiment, tag) VALUES (?, ?)`);
    for (const tag of tags) {
      const t = tag.trim();
      if (t) insert.run(id, t);
    }
  }

  // ── lineage (lineage.ts) ───────────────────────────────────────────────────────────────────────────

  /** Records the sha256 of the .onnx file a finished experiment wrote. */
  recordOutput(id: number, sha256: string): void {
    recordOutput(this.db, id, sha256);
  }

  /** Points the experiment at the finished experiment that wrote its input model; returns that one's id. */
  linkInput(id: number, inputSha256: string): number | null {
    return linkInput(this.db, id, inputSha256);
  }

  /** The lineage tree that holds the experiment. */
  lineage(id: number): LineageTree {
    const tree = lineageTree(this.db, id);
    if (!tree) throw notFound(id);
    return tree;
  }

  // ── recent models ──────────────────────────────────────────────────────────────────────────────────

  touchRecentModel(path: string, keep = 50): void {
    this.db.transaction(() => {
      this.db.prepare(`INSERT INTO recent_models (path, last_opened) VALUES (?, ?) ON CONFLICT (path) DO UPDATE SET last_opened = excluded.last_opened`)
        .run(path, now());
      this.db.prepare(`DELETE FROM recent_models WHERE path NOT IN (SELECT path FROM recent_models ORDER BY last_opened DESC LIMIT ?)`).run(keep);
    })();
  }

  /** The recently opened models, newest first; whether each still exists is checked without blocking. */
  async recentModels(limit = 10): Promise<RecentModel[]> {
    const rows = this.db.prepare<{ path: string; last_opened: string }>(`SELECT path, last_opened FROM recent_models ORDER BY last_opened DESC, path LIMIT ?`)
      .all(limit);
    return Promise.all(rows.map(async (r) => ({ path: r.path, lastOpened: r.last_opened, exists: await stat(r.path).then(() => true, () => false) })));
  }

  // ── evaluation cache ───────────────────────────────────────────────────────────────────────────────

  cacheGet(modelSha256: string, settingsHash: string): CachedEvaluation | null {
    const r = this.db.prepare<{ metrics_json: string; created: string; experiment: number | null }>(
      `SELECT metrics_json, created, experiment FROM evaluation_cache WHERE model_sha256 = ? AND settings_hash = ?`,
    ).get(modelSha256, settingsHash);
    if (!r) return null;
    const metrics = (JSON.parse(r.metrics_json) as (Omit<Metric, 'value'> & { value: number | string })[])
      .map((m) => ({ ...m, value: Number(m.value) }));
    return { metrics, created: r.created, from: r.experiment };
  }

  /** Stores the metrics of one evaluated model; `experimentId` is the experiment that measured them. */
  cachePut(modelSha256: string, settingsHash: string, metrics: readonly Metric[], experimentId: number | null = null): void {
    this.db.prepare(
      `INSERT INTO evaluation_cache (model_sha256, settings_hash, metrics_json, created, experiment) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (model_sha256, settings_hash) DO UPDATE SET metrics_json = excluded.metrics_json, created = excluded.created, experiment = excluded.experiment`,
    ).run(modelSha256, settingsHash, JSON.stringify(metrics.map((m) => (Number.isFinite(m.value) ? m : { ...m, value: String(m.value) }))), now(), experimentId);
  }

  /** The latest finished evaluate-only experiment of the model whose .onnx file has this sha256. */
  latestEvaluation(modelSha256: string): number | null {
    const id = this.db.prepare<number>(
      `SELECT id FROM experiments WHERE model_sha256 = ? AND status = 'done' AND kind = 'evaluate' ORDER BY id DESC LIMIT 1`,
    ).pluck().get(modelSha256);
    return id ?? null;
  }

  // ── groups (sweeps; groups.ts) ─────────────────────────────────────────────────────────────────────

  /** Records a sweep group (its base recipe and grid); its experiments join it with `joinGroup`. */
  createGroup(g: NewGroup): number {
    return createGroup(this.db, g);
  }

  joinGroup(experimentId: number, groupId: number): void {
    joinGroup(this.db, experimentId, groupId);
  }

  /** A group and its members (oldest first), each with the recipe it ran. */
  group(id: number): GroupRecord & { members: (ExperimentSummary & { recipe: unknown })[] } {
    const g = groupRecord(this.db, id);
    if (!g) throw new WhittleError('NOT_FOUND', `There is no sweep ${id} in the history. It may have been deleted.`, { id });
    const rows = this.db.prepare<ExperimentRow>(`SELECT * FROM experiments WHERE group_id = ? ORDER BY id`).all(id);
    const metrics = this.db.prepare<MetricRow>(`SELECT experiment, name, value, unit, subject FROM metrics WHERE experiment = ? ORDER BY id`);
    const tags = this.db.prepare<string>(`SELECT tag FROM tags WHERE experiment = ? ORDER BY tag`).pluck();
    const members = rows.map((r) => ({ ...this.summary(r, pickHeadline(metrics.all(r.id).map(toMetric)), tags.all(r.id)), recipe: JSON.parse(r.recipe_json) as unknown }));
    return { ...g, members };
  }

  /** The newest groups with their member counts. */
  groups(limit = 50): { id: number; created: string; name: string; members: number }[] {
    return recentGroups(this.db, limit);
  }
}

/**
 * Every method of `history` (and of its prototype chain up to History) rethrows SQLite failures as typed
 * IO errors (sqlite-errors.ts), so no caller sees a raw SqliteError.
 */
function typedFailures(history: History, file: string, busyTimeoutMs: number): void {
  const proto = History.prototype as unknown as Record<string, unknown>;
  const self = history as unknown as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(proto)) {
    const method = proto[name];
    if (name === 'constructor' || typeof method !== 'function') continue;
    self[name] = function typed(this: unknown, ...args: unknown[]): unknown {
      let out: unknown;
      try {
        out = (method as (...a: unknown[]) => unknown).apply(this, args);
      } catch (e) {
        throw historyError(e, file, busyTimeoutMs);
      }
      return out instanceof Promise ? out.catch((e: unknown) => { throw historyError(e, file, busyTimeoutMs); }) : out;
    };
  }
}

export function openHistory(options: { home: string; busyTimeoutMs?: number }): History {
  return new History(options.home, options.busyTimeoutMs);
}
