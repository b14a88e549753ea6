/**
 * Sweeps as jobs: every combination of the grid is checked against the recipe schema before anything is
 * recorded (all invalid combinations reported at once), then one group row and one queued experiment per
 * combination are made; the job service runs them one after another. A sweep is resumable: the
 * combinations with no member that is done, queued or running (interrupted by a restart, cancelled,
 * failed) are queued again in the same group.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { ExperimentStatus, SweepView } from '../../preload/contract.ts';
import { experimentName, modelShortName } from '../../preload/naming.ts';
import { Recipe } from '../../preload/recipe.ts';
import {
  assignmentLabel, assignmentOf, expandSweep, SweepGrid, sweepIssues, type SweepIssue, type SweepMember,
} from '../../preload/sweep.ts';
import { WhittleError } from '../engine/errors.ts';
import type { History } from '../history/history.ts';
import type { StartedJob } from './service.ts';

export interface SweepDeps {
  history: Pick<History, 'createGroup' | 'group'>;
  jobs: { start(recipe: unknown, name?: string, options?: { groupId?: number }): Promise<StartedJob> | StartedJob };
}

export interface SweepRequest {
  recipe: unknown;
  grid: SweepGrid;
  name?: string;
}

export interface SweepStarted {
  groupId: number;
  /** The jobs queued, in grid order. */
  jobs: StartedJob[];
}

/** Statuses that mean a combination needs no new run. */
const SETTLED: ReadonlySet<ExperimentStatus> = new Set(['done', 'queued', 'running']);

function invalidSweep(issues: readonly SweepIssue[], members: readonly SweepMember[]): WhittleError {
  const bad = new Map<string, SweepIssue[]>();
  for (const i of issues) {
    const label = assignmentLabel(i.assignment);
    bad.set(label, [...(bad.get(label) ?? []), i]);
  }
  const lines = [...bad].map(([label, list]) => `${label}: ${list.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`);
  return new WhittleError(
    'INVALID_INPUT',
    `${bad.size} of the sweep's ${members.length} combinations ${bad.size === 1 ? 'is not a valid recipe' : 'are not valid recipes'}; nothing was started. `
      + `Change the grid or the recipe: ${lines.join(' | ')}`,
    { issues: issues.map((i) => ({ assignment: i.assignment, path: i.path, message: i.message })) },
  );
}

/** The combinations, every one valid, or INVALID_INPUT naming each invalid one and why. */
export function checkSweep(recipe: unknown, grid: unknown): { grid: SweepGrid; members: SweepMember[] } {
  const g = SweepGrid.safeParse(grid);
  if (!g.success) throw new WhittleError('INVALID_INPUT', `The sweep's grid is not valid: ${g.error.issues.map((i) => `${i.path.join('.') || 'grid'}: ${i.message}`).join('; ')}`);
  let members: SweepMember[];
  try {
    members = expandSweep(recipe, g.data);
  } catch (e) {
    throw new WhittleError('INVALID_INPUT', `The sweep cannot be expanded: ${(e as Error).message}.`);
  }
  const issues = sweepIssues(members);
  if (issues.length > 0) throw invalidSweep(issues, members);
  return { grid: g.data, members };
}

/** The names of the members: the experiment naming function, told apart by the grid values where two would match. */
function memberNames(members: readonly SweepMember[]): string[] {
  const names = members.map((m) => {
    const r = Recipe.parse(m.recipe);
    return r.name?.trim() || experimentName(r);
  });
  const seen = new Map<string, number>();
  for (const n of names) seen.set(n, (seen.get(n) ?? 0) + 1);
  return names.map((n, i) => ((seen.get(n) ?? 0) > 1 ? `${n} (${assignmentLabel(members[i].assignment)})`.slice(0, 200) : n));
}

/** "Sweep method × bits · stories260K". */
export function defaultSweepName(recipe: unknown, grid: SweepGrid): string {
  const model = Recipe.safeParse(recipe);
  const keys = Object.keys(grid).map((k) => k.split('.').at(-1)).join(' × ');
  return `Sweep ${keys}${model.success ? ` · ${modelShortName(model.data.model.path)}` : ''}`.slice(0, 200);
}

async function checkModels(members: readonly SweepMember[]): Promise<void> {
  const paths = new Set(members.map((m) => path.resolve(Recipe.parse(m.recipe).model.path)));
  for (const p of paths) {
    const found = await stat(p).then(() => true, () => false);
    if (!found) throw new WhittleError('NOT_FOUND', `There is no model at ${p}. Check the recipe's model.path; nothing was started.`, { path: p });
  }
}

async function queue(deps: SweepDeps, groupId: number, members: readonly SweepMember[], names: readonly string[]): Promise<StartedJob[]> {
  const started: StartedJob[] = [];
  for (let i = 0; i < members.length; i++) started.push(await deps.jobs.start(members[i].recipe, names[i], { groupId }));
  return started;
}

/** Checks every combination, records the group and queues one job per combination. */
export async function startSweep(deps: SweepDeps, request: SweepRequest): Promise<SweepStarted> {
  const { grid, members } = checkSweep(request.recipe, request.grid);
  await checkModels(members);
  const name = request.name?.trim() || defaultSweepName(request.recipe, grid);
  const groupId = deps.history.createGroup({ name, kind: 'sweep', recipe: request.recipe, grid });
  return { groupId, jobs: await queue(deps, groupId, members, memberNames(members)) };
}

/** The combinations of a group that have no member done, queued or running. */
function unsettled(group: ReturnType<History['group']>): { all: SweepMember[]; open: SweepMember[] } {
  const all = expandSweep(group.recipe, group.grid);
  const settled = new Set(group.members.filter((m) => SETTLED.has(m.status)).map((m) => JSON.stringify(m.recipe)));
  return { all, open: all.filter((m) => !settled.has(JSON.stringify(m.recipe))) };
}

/** Queues again the group's combinations that did not finish (interrupted, cancelled, failed, never made). */
export async function resumeSweep(deps: SweepDeps, groupId: number): Promise<SweepStarted> {
  const group = deps.history.group(groupId);
  const { all, open } = unsettled(group);
  if (open.length === 0) return { groupId, jobs: [] };
  await checkModels(open);
  const names = memberNames(all);
  const byIndex = new Map(all.map((m, i) => [m.index, names[i]]));
  return { groupId, jobs: await queue(deps, groupId, open, open.map((m) => byIndex.get(m.index)!)) };
}

/** A group as the UI and the CLI show it: members with their grid values, counts, and what a resume would run. */
export function sweepView(history: Pick<History, 'group'>, groupId: number): SweepView {
  const group = history.group(groupId);
  const { all, open } = unsettled(group);
  const counts: Partial<Record<ExperimentStatus, number>> = {};
  for (const m of group.members) counts[m.status] = (counts[m.status] ?? 0) + 1;
  return {
    id: group.id, created: group.created, name: group.name, kind: group.kind, recipe: group.recipe, grid: group.grid,
    size: all.length,
    remaining: open.length,
    counts,
    members: group.members.map(({ recipe, ...summary }) => ({ ...summary, assignment: assignmentOf(recipe, group.grid) })),
  };
}
