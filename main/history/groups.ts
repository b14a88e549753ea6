/**
 * Experiment groups (a sweep: one recipe and a grid, one experiment per combination). The group row
 * keeps the base recipe and the grid verbatim; its members are the experiments whose group_id points
 * at it, in the order they were made.
 */
import type Database from 'better-sqlite3';
import type { ExperimentGroup } from '../../preload/contract.ts';
import type { SweepGrid } from '../../preload/sweep.ts';

export interface NewGroup {
  name: string;
  kind?: 'sweep';
  recipe: unknown;
  grid: SweepGrid;
}

export type GroupRecord = ExperimentGroup;

interface GroupRow { id: number; created: string; name: string; kind: string; recipe_json: string; grid_json: string }

export function createGroup(db: Database.Database, g: NewGroup): number {
  const info = db.prepare(`INSERT INTO experiment_groups (created, name, kind, recipe_json, grid_json) VALUES (?, ?, ?, ?, ?)`)
    .run(new Date().toISOString(), g.name, g.kind ?? 'sweep', JSON.stringify(g.recipe ?? null), JSON.stringify(g.grid));
  return Number(info.lastInsertRowid);
}

export function groupRecord(db: Database.Database, id: number): GroupRecord | null {
  const r = db.prepare<GroupRow>(`SELECT id, created, name, kind, recipe_json, grid_json FROM experiment_groups WHERE id = ?`).get(id);
  if (!r) return null;
  return { id: r.id, created: r.created, name: r.name, kind: r.kind, recipe: JSON.parse(r.recipe_json), grid: JSON.parse(r.grid_json) as SweepGrid };
}

/** The member experiments' ids, oldest first. */
export function groupMemberIds(db: Database.Database, id: number): number[] {
  return db.prepare<number>(`SELECT id FROM experiments WHERE group_id = ? ORDER BY id`).pluck().all(id);
}

/** Puts an experiment in a group. */
export function joinGroup(db: Database.Database, experimentId: number, groupId: number): void {
  db.prepare(`UPDATE experiments SET group_id = ? WHERE id = ?`).run(groupId, experimentId);
}

/** The most recent groups, newest first (for the history page). */
export function recentGroups(db: Database.Database, limit: number): { id: number; created: string; name: string; members: number }[] {
  return db.prepare<{ id: number; created: string; name: string; members: number }>(
    `SELECT g.id, g.created, g.name, (SELECT COUNT(*) FROM experiments e WHERE e.group_id = g.id) AS members
     FROM experiment_groups g ORDER BY g.id DESC LIMIT ?`,
  ).all(limit);
}
