/**
 * Sweeps: one recipe and a grid of values for some of its fields → the cartesian product of recipes,
 * each run as its own experiment in one group. A grid key is a dotted path into the recipe
 * (`steps.0.bits`, `steps.0.calibration.samples`, `evaluation.perplexity.window`); numeric segments
 * index arrays. Pure and zod-only, so the CLI, the services and the renderer share it.
 */
import { z } from 'zod';
import { Recipe } from './recipe.ts';

/** One value a grid key takes: what a recipe field can hold that is worth sweeping. */
export const GridValue = z.union([z.string().max(4096), z.number(), z.boolean()]);
export type GridValue = z.infer<typeof GridValue>;

const GRID_KEY = /^[A-Za-z_][A-Za-z0-9_]*(\.([A-Za-z_][A-Za-z0-9_]*|\d+))*$/;

export const MAX_GRID_KEYS = 8;
export const MAX_GRID_VALUES = 32;
/** Combinations a sweep may expand to (each is a job). */
export const MAX_SWEEP_SIZE = 256;

export const SweepGrid = z.record(
  z.string().regex(GRID_KEY, 'a grid key is a dotted path into the recipe, e.g. steps.0.bits'),
  z.array(GridValue).min(1, 'give at least one value').max(MAX_GRID_VALUES),
).refine((g) => Object.keys(g).length >= 1, 'the grid needs at least one key=values')
  .refine((g) => Object.keys(g).length <= MAX_GRID_KEYS, `a grid has at most ${MAX_GRID_KEYS} keys`);
export type SweepGrid = z.infer<typeof SweepGrid>;

/** The values a combination gives each grid key, in the grid's key order. */
export type Assignment = Record<string, GridValue>;

export interface SweepMember {
  /** 0-based position in the grid's cartesian product (the last key varies fastest). */
  index: number;
  assignment: Assignment;
  /** The base recipe with the assignment written into it (a deep copy). */
  recipe: unknown;
}

/** A command-line value: numbers and booleans as such, a JSON string in quotes as that string, else the text. */
export function parseGridValue(text: string): GridValue {
  const t = text.trim();
  if (t === 'true') return true;
  if (t === 'false') return false;
  if (t !== '' && Number.isFinite(Number(t)) && /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(t)) return Number(t);
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) {
    try {
      const v: unknown = JSON.parse(t);
      if (typeof v === 'string') return v;
    } catch { /* not JSON: the text as typed */ }
  }
  return t;
}

/**
 * `key=v1,v2,…` (one `--grid` argument, or one line of the grid editor) → key and values.
 * Throws an Error with a sentence saying what is wrong.
 */
export function parseGridArgument(text: string): { key: string; values: GridValue[] } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new Error(`"${text}" is not key=v1,v2,…: write for example steps.0.bits=4,8`);
  const key = text.slice(0, eq).trim();
  if (!GRID_KEY.test(key)) throw new Error(`"${key}" is not a dotted path into the recipe (for example steps.0.bits or steps.0.calibration.samples)`);
  const raw = text.slice(eq + 1).split(',').map((v) => v.trim());
  if (raw.length === 0 || raw.some((v) => v === '')) throw new Error(`${key}: give values separated by commas, none empty (for example ${key}=4,8)`);
  return { key, values: raw.map(parseGridValue) };
}

/** Grid arguments → a grid; a key given twice is an error. */
export function parseGridArguments(texts: readonly string[]): SweepGrid {
  const grid: SweepGrid = {};
  for (const t of texts) {
    const { key, values } = parseGridArgument(t);
    if (key in grid) throw new Error(`${key} is given twice: put all its values in one key=v1,v2,… argument`);
    grid[key] = values;
  }
  return grid;
}

/** The number of combinations (the product of the value counts). */
export function sweepSize(grid: SweepGrid): number {
  return Object.values(grid).reduce((n, values) => n * values.length, 1);
}

/** The value at a dotted path, or undefined when the path does not lead anywhere. */
export function getPath(root: unknown, key: string): unknown {
  let at: unknown = root;
  for (const segment of key.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[segment];
  }
  return at;
}

/**
 * Writes `value` at a dotted path of `root` (mutated), creating missing objects on the way. An array
 * index past the end is an error: the recipe has no such step to set.
 */
export function setPath(root: Record<string, unknown>, key: string, value: GridValue): void {
  const segments = key.split('.');
  let at: unknown = root;
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    const container = at as Record<string, unknown> | unknown[];
    if (Array.isArray(container)) {
      const index = Number(segment);
      if (!/^\d+$/.test(segment) || index >= container.length) {
        throw new Error(`${key}: ${segments.slice(0, i).join('.')} has ${container.length} entr${container.length === 1 ? 'y' : 'ies'}, so there is no ${segment}`);
      }
      if (last) container[index] = value;
      else at = container[index];
    } else {
      if (last) container[segment] = value;
      else {
        if (container[segment] === undefined) container[segment] = {};
        at = container[segment];
      }
    }
    if (!last && (at === null || typeof at !== 'object')) {
      throw new Error(`${key}: ${segments.slice(0, i + 1).join('.')} is ${JSON.stringify(at)}, not an object to set ${segments[i + 1]} in`);
    }
  });
}

/** "method=gptq, bits=4, blockSize=32": the last segment of each key and its value. */
export function assignmentLabel(assignment: Assignment): string {
  return Object.entries(assignment).map(([k, v]) => `${k.split('.').at(-1)}=${String(v)}`).join(', ');
}

/**
 * The cartesian product of the grid applied to the base recipe, in order (the last key varies fastest).
 * Throws an Error when the grid is too large or a key cannot be set in the recipe.
 */
export function expandSweep(recipe: unknown, grid: SweepGrid): SweepMember[] {
  if (recipe === null || typeof recipe !== 'object' || Array.isArray(recipe)) throw new Error('the recipe is not a JSON object');
  const size = sweepSize(grid);
  if (size > MAX_SWEEP_SIZE) throw new Error(`the grid makes ${size} combinations; a sweep runs at most ${MAX_SWEEP_SIZE}: give fewer values`);
  const keys = Object.keys(grid);
  const members: SweepMember[] = [];
  for (let index = 0; index < size; index++) {
    // The index in mixed radix, the last key as the lowest digit.
    let rest = index;
    const picks = new Array<GridValue>(keys.length);
    for (let k = keys.length - 1; k >= 0; k--) {
      const values = grid[keys[k]];
      picks[k] = values[rest % values.length];
      rest = Math.floor(rest / values.length);
    }
    const assignment: Assignment = {};
    const copy = structuredClone(recipe) as Record<string, unknown>;
    keys.forEach((key, k) => {
      assignment[key] = picks[k];
      setPath(copy, key, picks[k]);
    });
    members.push({ index, assignment, recipe: copy });
  }
  return members;
}

export interface SweepIssue { assignment: Assignment; path: string; message: string }

function issuePath(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

/** Every combination checked against the recipe schema: the issues of all the invalid ones (empty: all valid). */
export function sweepIssues(members: readonly SweepMember[]): SweepIssue[] {
  const issues: SweepIssue[] = [];
  for (const m of members) {
    const parsed = Recipe.safeParse(m.recipe);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) issues.push({ assignment: m.assignment, path: issuePath(issue.path), message: issue.message });
    }
  }
  return issues;
}

/** The assignment a member's recipe holds (its values at the grid's keys). */
export function assignmentOf(recipe: unknown, grid: SweepGrid): Assignment {
  const out: Assignment = {};
  for (const key of Object.keys(grid)) {
    const v = getPath(recipe, key);
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[key] = v;
  }
  return out;
}
