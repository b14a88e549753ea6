/**
 * The points of the Pareto view: every done experiment of one original model, found by content. A run
 * belongs to the model when it read the model's file (experiments.model_sha256), or read the output of a
 * run that belongs to it (lineage: the output's sha256, experiments.output_sha256 or the result recorded in
 * the run's details). Given a derived model, the view climbs to its original first.
 * The front and the budget pick are pure (preload/pareto.ts).
 */
import type { ParetoPoint, ParetoSet } from '../../preload/pareto.ts';
import { WhittleError } from '../engine/errors.ts';
import { Recipe } from '../../preload/recipe.ts';
import { parsedRecipeLabel, recipeLabel } from './compare.ts';
import type { History } from './history.ts';
import { historyError } from './sqlite-errors.ts';
import { BUSY_TIMEOUT_MS } from './open.ts';

type Db = History['db'];

/** How far lineage is followed (a chain longer than this is cut there). */
const MAX_DEPTH = 32;

interface RunRow {
  id: number;
  name: string;
  kind: string;
  created: string;
  recipe_json: string;
  model_path: string;
  model_sha256: string;
  out_column: string | null;
  out_details: string | null;
}

interface MetricRow { experiment: number; name: string; value: number | null; subject: string }

/** The sha256 of the original model a model was made from (itself when no run in the history wrote it). */
function rootOf(db: Db, sha256: string): string {
  // The recorded output (indexed); runs from before outputs were recorded: the result in their details.
  const byColumn = db.prepare<string>(
    `SELECT model_sha256 FROM experiments
     WHERE output_sha256 = ? AND status = 'done' AND model_sha256 IS NOT NULL AND model_sha256 <> ? ORDER BY id LIMIT 1`,
  ).pluck();
  const byDetails = db.prepare<string>(
    `SELECT e.model_sha256 FROM experiments e JOIN details d ON d.experiment = e.id
     WHERE e.output_sha256 IS NULL AND e.status = 'done' AND e.kind <> 'evaluate' AND e.model_sha256 IS NOT NULL AND e.model_sha256 <> ?
       AND json_extract(d.json, '$.result.sha256') = ?
     ORDER BY e.id LIMIT 1`,
  ).pluck();
  const seen = new Set([sha256]);
  let current = sha256;
  for (let i = 0; i < MAX_DEPTH; i++) {
    const up = byColumn.get(current, current) ?? byDetails.get(current, current);
    if (up === undefined || seen.has(up)) break;
    seen.add(up);
    current = up;
  }
  return current;
}

/** The done runs of the model and of everything made from it, each with its depth from the original. */
function runsOf(db: Db, root: string): { run: RunRow; depth: number }[] {
  const select = db.prepare<RunRow>(
    // A run's details are read only when it recorded no output (older runs): they can be large.
    `SELECT e.id, e.name, e.kind, e.created, e.recipe_json, e.model_path, e.model_sha256, e.output_sha256 AS out_column,
            CASE WHEN e.output_sha256 IS NULL AND e.kind <> 'evaluate'
                 THEN (SELECT json_extract(d.json, '$.result.sha256') FROM details d WHERE d.experiment = e.id) END AS out_details
     FROM experiments e
     WHERE e.status = 'done' AND e.model_sha256 IN (SELECT value FROM json_each(?)) ORDER BY e.id`,
  );
  const depthOf = new Map<string, number>([[root, 0]]);
  const out: { run: RunRow; depth: number }[] = [];
  const taken = new Set<number>();
  let frontier = [root];
  for (let depth = 0; frontier.length > 0 && depth < MAX_DEPTH; depth++) {
    const next: string[] = [];
    for (const run of select.all(JSON.stringify(frontier))) {
      if (taken.has(run.id)) continue;
      taken.add(run.id);
      out.push({ run, depth });
      for (const sha of [run.out_column, run.out_details]) {
        if (sha && !depthOf.has(sha)) { depthOf.set(sha, depth + 1); next.push(sha); }
      }
    }
    frontier = next;
  }
  return out;
}

/** What a run's recipe says it did, and how its perplexity was measured (defaults filled in), in words. */
function describeRecipe(recipeJson: string, known: Map<string, Described>): Described {
  const seen = known.get(recipeJson);
  if (seen) return seen;
  const described = describeRecipeText(recipeJson);
  known.set(recipeJson, described);
  return described;
}

function describeRecipeText(recipeJson: string): Described {
  let raw: unknown;
  try {
    raw = JSON.parse(recipeJson);
  } catch {
    return { method: '', evaluation: null };
  }
  const parsed = Recipe.safeParse(raw);
  const p = parsed.success ? parsed.data.evaluation.perplexity : undefined;
  const evaluation = !p ? null : p.protocol === 'stream'
    ? `${p.text} · stream, ${p.window}-token windows, ≤ ${p.maxSamples}`
    : `${p.text} · documents ≤ ${p.window} tokens, ≤ ${p.maxSamples} of ≥ ${p.minTokens} tokens`;
  return { method: parsed.success ? parsedRecipeLabel(parsed.data) : recipeLabel(raw), evaluation };
}

type Described = { method: string; evaluation: string | null };

function pointOf(run: RunRow, depth: number, metrics: readonly MetricRow[], subject: string, original: boolean, known: Map<string, Described>): ParetoPoint | null {
  const value = (name: string): number | null => {
    const m = metrics.find((x) => x.subject === subject && x.name === name);
    return m && m.value !== null && Number.isFinite(m.value) ? m.value : null;
  };
  const described = describeRecipe(run.recipe_json, known);
  const point: ParetoPoint = {
    id: run.id, name: run.name, kind: run.kind, method: original ? 'Original' : described.method, created: run.created, original,
    bytes: value('bytes_on_disk'), bitsPerWeight: value('bits_per_weight'), perplexity: value('perplexity'),
    // KL is against the run's own input: against the original only for runs made straight from it.
    kl: depth === 0 && !original ? value('kl_mean') : original ? 0 : null,
    decodeTokensPerS: value('decode_tokens_per_s'), prefillMs: value('prefill_ms'),
    evaluation: described.evaluation,
    depth: original ? 0 : depth + (subject === 'result' ? 1 : 0),
  };
  const measured = [point.bytes, point.bitsPerWeight, point.perplexity].some((v) => v !== null) || (point.kl !== null && !original);
  return measured ? point : null;
}

/**
 * Every done experiment of the original model behind `sha256` (a model's file sha256, original or derived)
 * as a point, with the original itself as one more point (measured by the newest run that measured it).
 */
export function paretoSet(history: Pick<History, 'db' | 'path'>, sha256: string): ParetoSet {
  try {
    const db = history.db;
    const root = rootOf(db, sha256);
    const runs = runsOf(db, root);
    if (runs.length === 0) {
      throw new WhittleError('NOT_FOUND', 'No finished experiment used this model yet. Evaluate, quantize or prune it first, then open the Pareto view again.', { sha256 });
    }
    const metricRows = db.prepare<MetricRow>(
      `SELECT experiment, name, value, subject FROM metrics WHERE experiment IN (SELECT value FROM json_each(?)) ORDER BY id`,
    ).all(JSON.stringify(runs.map((r) => r.run.id)));
    const metricsOf = new Map<number, MetricRow[]>();
    for (const m of metricRows) {
      const list = metricsOf.get(m.experiment);
      if (list) list.push(m); else metricsOf.set(m.experiment, [m]);
    }

    const points: ParetoPoint[] = [];
    const known = new Map<string, Described>();
    let evaluatedOriginal: ParetoPoint | null = null;
    let lastCompression: RunRow | null = null;
    for (const { run, depth } of runs) {
      const metrics = metricsOf.get(run.id) ?? [];
      const hasResult = metrics.some((m) => m.subject === 'result');
      if (hasResult) {
        const p = pointOf(run, depth, metrics, 'result', false, known);
        if (p) points.push(p);
        if (depth === 0) lastCompression = run;
      } else if (depth === 0) {
        evaluatedOriginal = pointOf(run, 0, metrics, 'model', true, known) ?? evaluatedOriginal;
      } else {
        const p = pointOf(run, depth - 1, metrics, 'model', false, known);
        if (p) points.push({ ...p, kl: null, depth });
      }
    }
    // The original: its newest evaluation alone, else as the newest compression of it measured it.
    const original = evaluatedOriginal
      ?? (lastCompression ? pointOf(lastCompression, 0, metricsOf.get(lastCompression.id) ?? [], 'original', true, known) : null);
    if (original) points.unshift(original);

    const groups = new Map<string, number[]>();
    for (const p of points) {
      if (p.evaluation === null || p.perplexity === null) continue;
      const ids = groups.get(p.evaluation);
      if (ids) { if (!ids.includes(p.id)) ids.push(p.id); } else groups.set(p.evaluation, [p.id]);
    }
    const path = runs.find((r) => r.run.model_sha256 === root)?.run.model_path ?? null;
    return {
      model: { sha256: root, path },
      points,
      evaluations: [...groups].map(([key, ids]) => ({ key, ids })).sort((a, b) => b.ids.length - a.ids.length),
    };
  } catch (e) {
    if (e instanceof WhittleError) throw e;
    throw historyError(e, history.path, BUSY_TIMEOUT_MS);
  }
}
