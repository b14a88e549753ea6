/**
 * The history list as SQL: filters (status, kind, tags, starred), full-text search (FTS5, see search.ts),
 * pinned experiments first, then relevance (bm25) or the chosen column, one page at a time with the total.
 * Each filter is answered from an index (experiments_{kind,status,starred}_pinned_created, tags_tag,
 * experiments_fts with prefix indexes), and a page's order is settled on ids before its rows are read
 * (sorting thousands of whole rows, recipes included, would cost more than the query), so a page costs
 * milliseconds at 10,000 experiments (tests/bench/history-scale.bench.ts).
 */
import type Database from 'better-sqlite3';
import type { ExperimentStatus, KindCount, TagCount } from '../../preload/contract.ts';
import { JOB_KINDS } from '../../preload/methods.ts';
import { ftsMatchExpression, searchTerms, type SearchTerm } from './search.ts';

export type ListSort = 'relevance' | 'created' | 'name' | 'status' | 'kind';

export interface ListQuery {
  /** Words searched in names, kinds, models, notes and tags (prefixes, all must match); words of 3
   *  characters or more also inside names and models. */
  search?: string;
  status?: ExperimentStatus;
  kind?: string;
  /** Experiments carrying every one of these tags. */
  tags?: readonly string[];
  /** Only starred experiments. */
  starred?: boolean;
  /** 'relevance' ranks search matches by bm25; without a search it is 'created'. */
  sort?: ListSort;
  order?: 'asc' | 'desc';
  limit?: number;
  offset?: number;
}

export const MAX_PAGE = 500;

const SORT_COLUMNS = { created: 'e.created', name: 'e.name COLLATE NOCASE', status: 'e.status', kind: 'e.kind' } as const;

/**
 * bm25 weights of the FTS columns (name, kind, model, notes, tags): a word in the name or a tag says
 * more about an experiment than the same word somewhere in its notes.
 */
const BM25 = 'bm25(experiments_fts, 10.0, 2.0, 3.0, 1.0, 5.0)';

function likePattern(search: string): string {
  return `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** The page of experiment rows matching `query`, and how many match in all. */
export function listRows<Row>(db: Database.Database, query: ListQuery): { rows: Row[]; total: number } {
  const where: string[] = [];
  const params: unknown[] = [];
  const search = query.search?.trim() ?? '';
  const match = search ? ftsMatchExpression(search) : null;
  if (search && match === null) {
    // Text without a single letter or digit ("%", "--"): FTS indexes words only, so such text is
    // looked for literally in names, models and notes.
    where.push(`(e.name LIKE ? ESCAPE '\\' OR e.model_path LIKE ? ESCAPE '\\' OR e.notes LIKE ? ESCAPE '\\')`);
    const p = likePattern(search);
    params.push(p, p, p);
  }
  if (query.status) { where.push('e.status = ?'); params.push(query.status); }
  if (query.kind) { where.push('e.kind = ?'); params.push(query.kind); }
  if (query.starred) where.push('e.starred = 1');
  const tags = [...new Set((query.tags ?? []).map((t) => t.trim()).filter(Boolean))];
  if (tags.length === 1) {
    where.push('e.id IN (SELECT experiment FROM tags WHERE tag = ?)');
    params.push(tags[0]);
  } else if (tags.length > 1) {
    where.push(`e.id IN (SELECT experiment FROM tags WHERE tag IN (${tags.map(() => '?').join(', ')}) GROUP BY experiment HAVING COUNT(*) = ?)`);
    params.push(...tags, tags.length);
  }

  const limit = Math.max(1, Math.min(query.limit ?? 100, MAX_PAGE));
  const offset = Math.max(0, query.offset ?? 0);
  const order = query.order === 'asc' ? 'ASC' : 'DESC';
  const and = (sql: string[]): string => sql.map((s) => ` AND ${s}`).join('');

  const terms = match !== null ? searchTerms(search) : [];
  if (match !== null && terms.some((t) => t.substring !== null)) {
    return searchWithSubstrings<Row>(db, terms, match, { where, params, limit, offset, order, sort: query.sort });
  }

  if (match !== null) {
    const inFts = 'e.id IN (SELECT rowid FROM experiments_fts WHERE experiments_fts MATCH ?)';
    // experiments_fts holds exactly one row per experiment (rowid = id), so without other filters the
    // index alone counts and ranks the matches.
    const total = where.length === 0
      ? db.prepare<number>('SELECT COUNT(*) FROM experiments_fts WHERE experiments_fts MATCH ?').pluck().get(match) ?? 0
      : db.prepare<number>(`SELECT COUNT(*) FROM experiments e WHERE ${inFts}${and(where)}`).pluck().get(match, ...params) ?? 0;
    if (query.sort === 'relevance' || query.sort === undefined) {
      return { rows: rowsInOrder<Row>(db, wordMatchPage(db, match, where, params, limit, offset)), total };
    }
    const column = SORT_COLUMNS[query.sort] ?? SORT_COLUMNS.created;
    const ids = db.prepare<number>(
      `SELECT e.id FROM experiments e WHERE ${inFts}${and(where)} ORDER BY e.pinned DESC, ${column} ${order}, e.id ${order} LIMIT ? OFFSET ?`,
    ).pluck().all(match, ...params, limit, offset);
    return { rows: rowsInOrder<Row>(db, ids), total };
  }

  const whereSql = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const column = query.sort && query.sort !== 'relevance' ? SORT_COLUMNS[query.sort] ?? SORT_COLUMNS.created : SORT_COLUMNS.created;
  const total = db.prepare<number>(`SELECT COUNT(*) FROM experiments e ${whereSql}`).pluck().get(...params) ?? 0;
  const ids = db.prepare<number>(
    `SELECT e.id FROM experiments e ${whereSql} ORDER BY e.pinned DESC, ${column} ${order}, e.id ${order} LIMIT ? OFFSET ?`,
  ).pluck().all(...params, limit, offset);
  return { rows: rowsInOrder<Row>(db, ids), total };
}

/** A page of the experiments matching `match` as words: pinned first, then by bm25, then newest. */
function wordMatchPage(db: Database.Database, match: string, where: readonly string[], params: readonly unknown[], limit: number, offset: number): number[] {
  if (where.length === 0) {
    const pinned = db.prepare<number>('SELECT id FROM experiments WHERE pinned = 1').pluck().all();
    return db.prepare<number>(
      `SELECT rowid FROM experiments_fts WHERE experiments_fts MATCH ?
       ORDER BY rowid IN (SELECT value FROM json_each(?)) DESC, ${BM25}, rowid DESC LIMIT ? OFFSET ?`,
    ).pluck().all(match, JSON.stringify(pinned), limit, offset);
  }
  return db.prepare<number>(
    `SELECT e.id FROM experiments_fts JOIN experiments e ON e.id = experiments_fts.rowid
     WHERE experiments_fts MATCH ?${where.map((w) => ` AND ${w}`).join('')}
     ORDER BY e.pinned DESC, ${BM25}, e.id DESC LIMIT ? OFFSET ?`,
  ).pluck().all(match, ...params, limit, offset);
}

interface Filtered {
  where: string[];
  params: unknown[];
  limit: number;
  offset: number;
  order: 'ASC' | 'DESC';
  sort: ListSort | undefined;
}

/**
 * A search where some word may also match inside a name or model path. The matches: the experiments
 * where every term matches as a word (experiments_fts) or inside a name or model (experiments_substring),
 * one set per term, intersected. By relevance, those where every word matches as a word come first,
 * ranked by bm25 as in listRows; those found only inside words follow, newest first.
 */
function searchWithSubstrings<Row>(db: Database.Database, terms: readonly SearchTerm[], match: string, f: Filtered): { rows: Row[]; total: number } {
  const hits = terms.map((t) => (t.substring === null
    ? 'SELECT rowid FROM experiments_fts WHERE experiments_fts MATCH ?'
    : 'SELECT id FROM (SELECT rowid AS id FROM experiments_fts WHERE experiments_fts MATCH ? UNION SELECT rowid FROM experiments_substring WHERE experiments_substring MATCH ?)'
  )).join(' INTERSECT ');
  const hitParams = terms.flatMap((t) => (t.substring === null ? [t.words] : [t.words, t.substring]));
  const and = f.where.map((s) => ` AND ${s}`).join('');
  const countHits = (): number => (f.where.length === 0
    ? db.prepare<number>(`SELECT COUNT(*) FROM (${hits})`).pluck().get(...hitParams) ?? 0
    : db.prepare<number>(`SELECT COUNT(*) FROM experiments e WHERE e.id IN (${hits})${and}`).pluck().get(...hitParams, ...f.params) ?? 0);
  if (f.sort === 'relevance' || f.sort === undefined) {
    const words = f.where.length === 0
      ? db.prepare<number>('SELECT COUNT(*) FROM experiments_fts WHERE experiments_fts MATCH ?').pluck().get(match) ?? 0
      : db.prepare<number>(`SELECT COUNT(*) FROM experiments e WHERE e.id IN (SELECT rowid FROM experiments_fts WHERE experiments_fts MATCH ?)${and}`).pluck().get(match, ...f.params) ?? 0;
    // Every experiment the filters leave matches as words (a broad word such as "model"): the matches
    // are counted without building the union of both indexes' thousands of rows.
    const all = db.prepare<number>(`SELECT COUNT(*) FROM experiments e${f.where.length ? ` WHERE ${f.where.join(' AND ')}` : ''}`).pluck().get(...f.params) ?? 0;
    const total = words === all ? words : countHits();
    // The matches are the word matches (a subset of them): the word search's page.
    if (words === total) return { rows: rowsInOrder<Row>(db, wordMatchPage(db, match, f.where, f.params, f.limit, f.offset)), total };
    // When no pinned experiment is found only inside words, the order is the word search's, then the
    // matches inside words, newest first, and the page is read from whichever of the two it falls in,
    // without ranking the union (at 10,000 a broad word such as "model" matches every experiment both ways).
    const insideOnly = `e.id IN (${hits}) AND e.id NOT IN (SELECT rowid FROM experiments_fts WHERE experiments_fts MATCH ?)${and}`;
    const pinnedInside = db.prepare<number>(`SELECT COUNT(*) FROM experiments e WHERE e.pinned = 1 AND ${insideOnly}`).pluck().get(...hitParams, match, ...f.params) ?? 0;
    if (pinnedInside === 0) {
      const ids = f.offset < words ? wordMatchPage(db, match, f.where, f.params, f.limit, f.offset) : [];
      if (ids.length < f.limit) {
        ids.push(...db.prepare<number>(`SELECT e.id FROM experiments e WHERE ${insideOnly} ORDER BY e.id DESC LIMIT ? OFFSET ?`)
          .pluck().all(...hitParams, match, ...f.params, f.limit - ids.length, Math.max(0, f.offset - words)));
      }
      return { rows: rowsInOrder<Row>(db, ids), total };
    }
    const ids = db.prepare<number>(
      `WITH hits(id) AS (${hits}),
       ranked(id, score) AS MATERIALIZED (SELECT rowid, ${BM25} FROM experiments_fts WHERE experiments_fts MATCH ?)
       SELECT e.id FROM hits h JOIN experiments e ON e.id = h.id LEFT JOIN ranked r ON r.id = h.id
       WHERE 1${and}
       ORDER BY e.pinned DESC, r.score IS NULL, r.score, e.id DESC LIMIT ? OFFSET ?`,
    ).pluck().all(...hitParams, match, ...f.params, f.limit, f.offset);
    return { rows: rowsInOrder<Row>(db, ids), total };
  }
  const total = countHits();
  const column = SORT_COLUMNS[f.sort] ?? SORT_COLUMNS.created;
  const ids = db.prepare<number>(
    `SELECT e.id FROM experiments e WHERE e.id IN (${hits})${and} ORDER BY e.pinned DESC, ${column} ${f.order}, e.id ${f.order} LIMIT ? OFFSET ?`,
  ).pluck().all(...hitParams, ...f.params, f.limit, f.offset);
  return { rows: rowsInOrder<Row>(db, ids), total };
}

/** The experiment rows of `ids`, in that order. */
function rowsInOrder<Row>(db: Database.Database, ids: readonly number[]): Row[] {
  if (ids.length === 0) return [];
  const rows = db.prepare<Row & { id: number }>(`SELECT * FROM experiments WHERE id IN (SELECT value FROM json_each(?))`).all(JSON.stringify(ids));
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

/** The tags of each of `ids`, sorted. */
export function tagsByExperiment(db: Database.Database, ids: readonly number[]): Map<number, string[]> {
  const byId = new Map<number, string[]>();
  if (ids.length === 0) return byId;
  const rows = db.prepare<{ experiment: number; tag: string }>(
    `SELECT experiment, tag FROM tags WHERE experiment IN (SELECT value FROM json_each(?)) ORDER BY experiment, tag`,
  ).all(JSON.stringify(ids));
  for (const r of rows) {
    let list = byId.get(r.experiment);
    if (!list) byId.set(r.experiment, (list = []));
    list.push(r.tag);
  }
  return byId;
}

/**
 * Every kind of job Whittle writes (JOB_KINDS, in that order) with how many experiments of it the
 * history holds, zero included, then any other kind found in the history (an older or newer Whittle's).
 */
export function kindCounts(db: Database.Database): KindCount[] {
  const present = new Map(
    db.prepare<{ kind: string; count: number }>(`SELECT kind, COUNT(*) AS count FROM experiments GROUP BY kind`).all().map((r) => [r.kind, r.count]),
  );
  const known = JOB_KINDS.map((kind) => ({ kind, count: present.get(kind) ?? 0 }));
  const others = [...present].filter(([kind]) => !JOB_KINDS.includes(kind)).sort(([a], [b]) => a.localeCompare(b)).map(([kind, count]) => ({ kind, count }));
  return [...known, ...others];
}

/** The tags in use, most used first (ties by name), at most `limit`. */
export function tagCounts(db: Database.Database, limit = 100): TagCount[] {
  return db.prepare<TagCount>(`SELECT tag, COUNT(*) AS count FROM tags GROUP BY tag ORDER BY count DESC, tag LIMIT ?`).all(limit);
}
