/** Writes experiments of the history to a bundle (format.ts), through a temporary file renamed at the end. */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { BundleExported } from '../../../preload/contract.ts';
import { WhittleError } from '../../engine/errors.ts';
import type { History } from '../history.ts';

/** What bundles read and write of the history. */
export type BundleHistory = Pick<History, 'db' | 'transaction'>;
import {
  BUNDLE_FORMAT, BUNDLE_VERSION, EXPERIMENTS_MEMBER, GROUPS_MEMBER, MANIFEST_MEMBER, MARKER_MEMBER,
  type BundleExperiment, type BundleGroup, type Manifest,
} from './format.ts';
import { TarWriter } from './tar.ts';

/** Columns of an experiments row that are ids (remapped through keys) or belong to this machine only. */
const ROW_SKIP = new Set(['id', 'parent_id', 'input_experiment', 'group_id', 'owner_pid']);

type Row = Record<string, string | number | null>;

/** Every regular file under `dir`, as paths relative to it, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

/** The output folders of an experiment: its folder artefacts, and the folder of a model artefact outside them. */
async function outputFolders(artefacts: readonly { kind: string; path: string }[]): Promise<string[]> {
  const candidates = [
    ...artefacts.filter((a) => a.kind === 'folder').map((a) => path.resolve(a.path)),
    ...artefacts.filter((a) => a.kind === 'model').map((a) => path.dirname(path.resolve(a.path))),
  ];
  const folders: string[] = [];
  for (const c of [...new Set(candidates)].sort()) {
    if (folders.some((f) => c === f || c.startsWith(`${f}${path.sep}`))) continue;
    if (await stat(c).then((s) => s.isDirectory(), () => false)) folders.push(c);
  }
  return folders;
}

export interface ExportOptions {
  withOutputs?: boolean;
  appVersion: string;
}

/** Writes experiments `ids` (with the groups they belong to) to the bundle `file`. */
export async function exportBundle(history: BundleHistory, ids: readonly number[], file: string, options: ExportOptions): Promise<BundleExported> {
  const db = history.db;
  const unique = [...new Set(ids)];
  const rows = unique.map((id) => {
    const row = db.prepare<Row>(`SELECT * FROM experiments WHERE id = ?`).get(id);
    if (!row) throw new WhittleError('NOT_FOUND', `There is no experiment ${id} in the history. Check the ids with \`whittle history list\`.`, { id });
    if (row.status === 'queued' || row.status === 'running') {
      throw new WhittleError('INVALID_INPUT', `Experiment ${id} is ${String(row.status)}. Export it once it has finished.`, { id, status: row.status });
    }
    return row;
  });
  const keys = new Set(unique);
  const ref = (v: unknown): number | null => (typeof v === 'number' && keys.has(v) ? v : null);

  const experiments: BundleExperiment[] = [];
  const groupIds = new Set<number>();
  for (const r of rows) {
    const id = r.id as number;
    const row: Row = {};
    for (const [k, v] of Object.entries(r)) if (!ROW_SKIP.has(k)) row[k] = v;
    if (typeof r.group_id === 'number') groupIds.add(r.group_id);
    const artefacts = db.prepare<{ kind: string; path: string; bytes: number | null }>(`SELECT kind, path, bytes FROM artefacts WHERE experiment = ? ORDER BY id`).all(id);
    experiments.push({
      key: id, row,
      parent: ref(r.parent_id), input: ref(r.input_experiment), group: typeof r.group_id === 'number' ? r.group_id : null,
      metrics: db.prepare<{ name: string; value: number | null; unit: string; subject: string }>(`SELECT name, value, unit, subject FROM metrics WHERE experiment = ? ORDER BY id`).all(id),
      artefacts,
      events: db.prepare<{ seq: number; time: string; level: string; text: string }>(`SELECT seq, time, level, text FROM events WHERE experiment = ? ORDER BY seq`).all(id),
      tags: db.prepare<string>(`SELECT tag FROM tags WHERE experiment = ? ORDER BY tag`).pluck().all(id),
      details: db.prepare<string>(`SELECT json FROM details WHERE experiment = ?`).pluck().get(id) ?? null,
      outputs: [],
    });
  }
  const groups: BundleGroup[] = [...groupIds].sort((a, b) => a - b).flatMap((gid) => {
    const g = db.prepare<Row>(`SELECT * FROM experiment_groups WHERE id = ?`).get(gid);
    if (!g) return [];
    const row: Row = {};
    for (const [k, v] of Object.entries(g)) if (k !== 'id') row[k] = v;
    return [{ key: gid, row }];
  });

  const target = path.resolve(file);
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${Date.now()}`);
  let writer: TarWriter;
  try {
    // The folder named for the bundle is made when missing (the app's default is <home>/bundles).
    await mkdir(path.dirname(target), { recursive: true });
    writer = await TarWriter.create(tmp);
  } catch (e) {
    throw new WhittleError('IO', `Whittle cannot write the bundle ${target} (${(e as Error).message}). Choose another file or folder.`, { path: target }, { cause: e });
  }
  const members: Manifest['members'] = [];
  const add = async (name: string, data: Buffer): Promise<void> => {
    members.push({ name, bytes: data.length, sha256: await writer.addBuffer(name, data) });
  };
  let outputFiles = 0;
  try {
    const created = new Date().toISOString();
    await add(MARKER_MEMBER, Buffer.from(JSON.stringify({ format: BUNDLE_FORMAT, version: BUNDLE_VERSION, app: options.appVersion, created })));
    if (options.withOutputs) {
      for (const e of experiments) {
        let n = 0;
        for (const folder of await outputFolders(e.artefacts)) {
          const files: BundleExperiment['outputs'][number]['files'] = [];
          for (const rel of await filesUnder(folder)) {
            const member = `outputs/${e.key}/${n++}`;
            const { bytes, sha256 } = await writer.addFile(member, path.join(folder, rel));
            members.push({ name: member, bytes, sha256 });
            files.push({ member, path: rel.split(path.sep).join('/'), bytes, sha256 });
            outputFiles++;
          }
          e.outputs.push({ folder, files });
        }
      }
    }
    await add(EXPERIMENTS_MEMBER, Buffer.from(JSON.stringify(experiments)));
    await add(GROUPS_MEMBER, Buffer.from(JSON.stringify(groups)));
    const manifest: Manifest = {
      format: BUNDLE_FORMAT, version: BUNDLE_VERSION, app: options.appVersion, created, experiments: experiments.length, withOutputs: options.withOutputs === true, members,
    };
    await writer.addBuffer(MANIFEST_MEMBER, Buffer.from(JSON.stringify(manifest, null, 1)));
    await writer.finish();
    await rename(tmp, target);
  } catch (e) {
    await writer.abandon();
    await rm(tmp, { force: true });
    if (e instanceof WhittleError) throw e;
    throw new WhittleError('IO', `Whittle could not write the bundle ${target} (${(e as Error).message}).`, { path: target }, { cause: e });
  }
  const { size } = await stat(target);
  return { path: target, bytes: size, experiments: experiments.length, outputFiles };
}
