/**
 * Lineage: which experiment's output a job read as its input. A finished job records the sha256 of the
 * .onnx file it wrote (experiments.output_sha256); a job that starts on a model file with that sha256
 * points at the experiment (experiments.input_experiment). The tree of a model is its original at the
 * root, the experiments made from the original below it, and the experiments made from each result below
 * those, recursively.
 */
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { ExperimentStatus, LineageNode, LineageTree, Metric } from '../../preload/contract.ts';
import { pickHeadline } from './headline.ts';

/** At most this many experiments in one tree (the rest are counted in `truncated`). */
export const LINEAGE_LIMIT = 500;

interface NodeRow {
  id: number;
  name: string;
  kind: string;
  status: ExperimentStatus;
  model_path: string;
  model_sha256: string | null;
  input_experiment: number | null;
}

const NODE_COLUMNS = 'id, name, kind, status, model_path, model_sha256, input_experiment';

/** The latest finished experiment that wrote a model file with this sha256 (not `except` itself). */
export function experimentWithOutput(db: Database.Database, sha256: string, except?: number): number | null {
  const id = db.prepare<number>(
    `SELECT id FROM experiments WHERE output_sha256 = ? AND status = 'done' AND id != ? ORDER BY id DESC LIMIT 1`,
  ).pluck().get(sha256, except ?? -1);
  return id ?? null;
}

/** Records the sha256 of the model file a finished experiment wrote. */
export function recordOutput(db: Database.Database, id: number, sha256: string): void {
  db.prepare(`UPDATE experiments SET output_sha256 = ? WHERE id = ?`).run(sha256, id);
}

/**
 * Points experiment `id` at the experiment whose output it reads (found by the input model's sha256).
 * Returns that experiment's id, or null when the input is no experiment's output.
 */
export function linkInput(db: Database.Database, id: number, inputSha256: string): number | null {
  const input = experimentWithOutput(db, inputSha256, id);
  if (input !== null) db.prepare(`UPDATE experiments SET input_experiment = ? WHERE id = ?`).run(input, id);
  return input;
}

/**
 * The tree that holds experiment `id`: its root is the original model (the model of the experiment at the
 * top of the input chain), linked to the latest evaluation of that model when there is one. Evaluations of
 * the original are not children (they make nothing), except the experiment asked about.
 */
export function lineageTree(db: Database.Database, id: number): LineageTree | null {
  const one = db.prepare<NodeRow>(`SELECT ${NODE_COLUMNS} FROM experiments WHERE id = ?`);
  let top = one.get(id);
  if (!top) return null;
  // Up the input chain (a cycle cannot be made through content hashes, but a bound costs nothing). The
  // chain is always shown, however large the tree.
  const chain = new Set<number>([top.id]);
  while (top.input_experiment !== null) {
    const up = one.get(top.input_experiment);
    if (!up || chain.has(up.id)) break;
    chain.add(up.id);
    top = up;
  }

  const rows: NodeRow[] = [];
  let truncated = 0;
  /** The rows of one generation kept in the tree: the chain's, then others while there is room. */
  const take = (list: NodeRow[]): void => {
    for (const r of list) {
      if (chain.has(r.id) || rows.length < LINEAGE_LIMIT) rows.push(r);
      else truncated++;
    }
  };

  // The first generation: every experiment on the original that no other experiment fed.
  const first = top.model_sha256 === null
    ? [top]
    : db.prepare<NodeRow>(
      `SELECT ${NODE_COLUMNS} FROM experiments WHERE model_sha256 = ? AND input_experiment IS NULL AND (kind != 'evaluate' OR id = ?) ORDER BY id`,
    ).all(top.model_sha256, id);
  if (!first.some((r) => r.id === top.id)) first.push(top);
  first.sort((a, b) => a.id - b.id);
  take(first);
  // Generation by generation; past the limit the rest is only counted.
  const children = db.prepare<NodeRow>(`SELECT ${NODE_COLUMNS} FROM experiments WHERE input_experiment IN (SELECT value FROM json_each(?)) ORDER BY id`);
  const childIds = db.prepare<number>(`SELECT id FROM experiments WHERE input_experiment IN (SELECT value FROM json_each(?))`).pluck();
  const placed = new Set(first.map((r) => r.id));
  let frontier = first.map((r) => r.id);
  while (frontier.length > 0) {
    if (rows.length < LINEAGE_LIMIT) {
      const next = children.all(JSON.stringify(frontier)).filter((r) => !placed.has(r.id));
      for (const r of next) placed.add(r.id);
      take(next);
      frontier = next.map((r) => r.id);
    } else {
      // Past the limit only the chain is shown; the rest is counted (ids from the index alone).
      const next = childIds.all(JSON.stringify(frontier)).filter((c) => !placed.has(c));
      for (const c of next) {
        placed.add(c);
        const row = chain.has(c) ? one.get(c) : undefined;
        if (row) rows.push(row);
        else truncated++;
      }
      frontier = next;
    }
  }

  const metrics = new Map<number, Metric[]>();
  if (rows.length > 0) {
    const metricRows = db.prepare<{ experiment: number; name: string; value: number | null; unit: string; subject: string }>(
      `SELECT experiment, name, value, unit, subject FROM metrics WHERE experiment IN (SELECT value FROM json_each(?)) ORDER BY id`,
    ).all(JSON.stringify(rows.map((r) => r.id)));
    for (const m of metricRows) {
      let list = metrics.get(m.experiment);
      if (!list) metrics.set(m.experiment, (list = []));
      list.push({ name: m.name, value: m.value ?? Number.NaN, unit: m.unit, subject: m.subject });
    }
  }

  const nodes = new Map<number, LineageNode>();
  for (const r of rows) {
    nodes.set(r.id, {
      id: r.id, kind: r.kind, name: r.name, status: r.status, modelPath: r.model_path,
      headline: pickHeadline(metrics.get(r.id) ?? []), children: [],
    });
  }
  const evaluation = top.model_sha256 === null ? undefined : db.prepare<number>(
    `SELECT id FROM experiments WHERE model_sha256 = ? AND status = 'done' AND kind = 'evaluate' ORDER BY id DESC LIMIT 1`,
  ).pluck().get(top.model_sha256);
  const originalMetrics = evaluation !== undefined
    ? db.prepare<{ name: string; value: number | null; unit: string; subject: string }>(`SELECT name, value, unit, subject FROM metrics WHERE experiment = ? ORDER BY id`).all(evaluation)
      .map((m) => ({ name: m.name, value: m.value ?? Number.NaN, unit: m.unit, subject: m.subject }))
    : (metrics.get(top.id) ?? []).filter((m) => m.subject === 'original');
  const root: LineageNode = {
    id: evaluation ?? null, kind: 'model', name: path.basename(top.model_path), status: null, modelPath: top.model_path,
    headline: pickHeadline(originalMetrics.map((m) => ({ ...m, subject: 'model' }))), children: [],
  };
  for (const r of rows) {
    const node = nodes.get(r.id)!;
    const parent = r.input_experiment !== null ? nodes.get(r.input_experiment) : undefined;
    // A node whose parent was left out (past the limit) hangs under the original rather than vanishing.
    (parent && r.id !== top.id ? parent.children : root.children).push(node);
  }
  return { root, current: id, truncated };
}
