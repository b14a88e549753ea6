/**
 * Reads a bundle (format.ts) into the history. Nothing changes until the whole file has been checked:
 * that it is a Whittle bundle of a format this version reads, that no member is missing, extra, cut
 * short or altered (sha256 against the manifest), and that its records have the expected shape. Then
 * output folders are unpacked into a temporary folder, the records go in with one transaction, and the
 * folders get their final names. Ids are new; lineage, parents and groups are remapped to them.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BundleImported } from '../../../preload/contract.ts';
import { WhittleError } from '../../engine/errors.ts';
import type { BundleHistory } from './export.ts';
import { experimentWithOutput } from '../lineage.ts';
import {
  BUNDLE_FORMAT, BUNDLE_VERSION, BundleExperiment, BundleGroup, EXPERIMENTS_MEMBER, GROUPS_MEMBER, Manifest, MANIFEST_MEMBER, Marker, MARKER_MEMBER,
} from './format.ts';
import { extractMember, hashMember, listTar, readMember, TarError, type TarEntry } from './tar.ts';

function refused(file: string, why: string, what: string, details: Record<string, unknown> = {}): WhittleError {
  return new WhittleError('INVALID_INPUT', `${file} cannot be imported: ${why}. ${what} Nothing was imported.`, { path: file, ...details });
}

function parseJson(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    return undefined;
  }
}

interface CheckedBundle {
  manifest: Manifest;
  experiments: BundleExperiment[];
  groups: BundleGroup[];
  entries: Map<string, TarEntry>;
}

/** Reads and checks the whole bundle; throws INVALID_INPUT saying what is wrong with it. */
export async function checkBundle(file: string): Promise<CheckedBundle> {
  let list: TarEntry[];
  try {
    list = await listTar(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new WhittleError('NOT_FOUND', `There is no bundle at ${file}. Check the path.`, { path: file });
    if (code === 'EISDIR') throw refused(file, 'it is a folder', 'Name the bundle file written by `whittle history export`.');
    if (e instanceof TarError) {
      throw e.kind === 'truncated'
        ? refused(file, `the file is incomplete (${e.message})`, 'Copy the bundle again from where it was exported.')
        : refused(file, `it is not a Whittle bundle or it is damaged (${e.message})`, 'Export it again with `whittle history export`.');
    }
    throw new WhittleError('IO', `Whittle cannot read ${file} (${(e as Error).message}).`, { path: file }, { cause: e });
  }
  const first = list[0];
  const marker = first?.name === MARKER_MEMBER && first.size < 4096 ? Marker.safeParse(parseJson(await readMember(file, first))) : null;
  if (!marker?.success || marker.data.format !== BUNDLE_FORMAT) {
    throw refused(file, 'it is not a Whittle bundle', 'Bundles are written by `whittle history export`.');
  }
  if (marker.data.version > BUNDLE_VERSION) {
    throw refused(file, `it was written by a newer Whittle${marker.data.app ? ` (${marker.data.app})` : ''} in bundle format ${marker.data.version}; this Whittle reads format ${BUNDLE_VERSION}`, 'Update Whittle, then import it again.', { version: marker.data.version });
  }
  const last = list.at(-1)!;
  const manifestParsed = last.name === MANIFEST_MEMBER ? Manifest.safeParse(parseJson(await readMember(file, last))) : null;
  if (!manifestParsed?.success) throw refused(file, 'its manifest is missing or damaged (the file may be incomplete)', 'Export it again.');
  const manifest = manifestParsed.data;

  const entries = new Map<string, TarEntry>();
  for (const e of list.slice(0, -1)) {
    if (entries.has(e.name)) throw refused(file, `the member ${e.name} appears twice`, 'Export it again.');
    entries.set(e.name, e);
  }
  const listed = new Set(manifest.members.map((m) => m.name));
  for (const name of entries.keys()) if (!listed.has(name)) throw refused(file, `it holds ${name}, which its manifest does not list`, 'Export it again.');
  for (const m of manifest.members) {
    const e = entries.get(m.name);
    if (!e) throw refused(file, `${m.name} is missing`, 'Export it again.');
    if (e.size !== m.bytes || (await hashMember(file, e)) !== m.sha256) {
      throw refused(file, `${m.name} does not match its checksum (the file is damaged)`, 'Copy or export it again.', { member: m.name });
    }
  }
  const experiments = entries.has(EXPERIMENTS_MEMBER) ? BundleExperiment.array().safeParse(parseJson(await readMember(file, entries.get(EXPERIMENTS_MEMBER)!))) : null;
  const groups = entries.has(GROUPS_MEMBER) ? BundleGroup.array().safeParse(parseJson(await readMember(file, entries.get(GROUPS_MEMBER)!))) : null;
  if (!experiments?.success || !groups?.success) throw refused(file, 'its records are not in the expected shape', 'Export it again with this version of Whittle.');
  const keys = new Set(experiments.data.map((e) => e.key));
  if (keys.size !== experiments.data.length) throw refused(file, 'an experiment appears twice in it', 'Export it again.');
  for (const e of experiments.data) {
    for (const o of e.outputs) for (const f of o.files) {
      const m = manifest.members.find((x) => x.name === f.member);
      if (!m || m.sha256 !== f.sha256 || m.bytes !== f.bytes) throw refused(file, `the output file ${f.path} of experiment ${e.key} is not in it`, 'Export it again.');
      if (path.isAbsolute(f.path) || f.path.split('/').includes('..')) throw refused(file, `the output file name ${f.path} points outside its folder`, 'Only import bundles from sources you trust.');
    }
  }
  return { manifest, experiments: experiments.data, groups: groups.data, entries };
}

function columnsOf(history: BundleHistory, table: string): Set<string> {
  return new Set(history.db.prepare<{ name: string }>(`SELECT name FROM pragma_table_info(?)`).all(table).map((c) => c.name));
}

const quoteId = (name: string): string => `"${name.replace(/"/g, '""')}"`;

function insertRow(history: BundleHistory, table: string, row: Record<string, string | number | null>, columns: Set<string>, extra: Record<string, string | number | null>): number {
  const values: Record<string, string | number | null> = {};
  for (const [k, v] of Object.entries(row)) if (columns.has(k)) values[k] = v;
  Object.assign(values, extra);
  const names = Object.keys(values);
  const info = history.db.prepare(`INSERT INTO ${table} (${names.map(quoteId).join(', ')}) VALUES (${names.map(() => '?').join(', ')})`).run(...names.map((n) => values[n]));
  return Number(info.lastInsertRowid);
}

/** The partial folder's target name of import staging folders: `.import.partial-<pid>-<random>`. */
export const IMPORT_STAGING_TARGET = '.import';

/** A new staging folder's name for this process (engine/rewrite/output-folder.ts's partial-folder form). */
export function importStagingName(): string {
  return `${IMPORT_STAGING_TARGET}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export interface ImportOptions {
  /** Where unpacked output folders go (made when missing). */
  outputsRoot: string;
}

export async function importBundle(history: BundleHistory, file: string, options: ImportOptions): Promise<BundleImported> {
  const source = path.resolve(file);
  const bundle = await checkBundle(source);

  // Output folders: unpacked under a temporary name first, renamed once the records are in. The name
  // carries this process's id, so what an interrupted import left is removed at the next start
  // (cleanInterruptedOutput, jobs/output-folder.ts).
  const stamp = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const staging = path.join(options.outputsRoot, importStagingName());
  const moves: { from: string; to: string }[] = [];
  const folderOf = new Map<string, string>();
  const withOutputs = bundle.experiments.filter((e) => e.outputs.length > 0);
  try {
    if (withOutputs.length > 0) {
      await mkdir(staging, { recursive: true });
      for (const e of withOutputs) {
        for (const [n, o] of e.outputs.entries()) {
          const temp = path.join(staging, `${e.key}-${n}`);
          await mkdir(temp);
          for (const f of o.files) {
            const target = path.join(temp, ...f.path.split('/'));
            await mkdir(path.dirname(target), { recursive: true });
            await extractMember(source, bundle.entries.get(f.member)!, target, f.sha256);
          }
          const to = path.join(options.outputsRoot, `imported-${stamp}-${e.key}-${path.basename(o.folder)}`);
          moves.push({ from: temp, to });
          folderOf.set(`${e.key}\0${o.folder}`, to);
        }
      }
    }
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw new WhittleError('IO', `Whittle could not unpack the output folders of ${source} into ${options.outputsRoot} (${(e as Error).message}). Nothing was imported.`, { path: source }, { cause: e });
  }

  /** An artefact path inside a packed folder, moved to where that folder is unpacked. */
  const relocate = (e: BundleExperiment, p: string): string => {
    for (const o of e.outputs) {
      const to = folderOf.get(`${e.key}\0${o.folder}`);
      if (!to) continue;
      const abs = path.resolve(p);
      if (abs === o.folder) return to;
      if (abs.startsWith(`${o.folder}${path.sep}`)) return path.join(to, path.relative(o.folder, abs));
    }
    return p;
  };

  let ids: { from: number; to: number }[];
  try {
    ids = history.transaction(() => {
      const experimentColumns = columnsOf(history, 'experiments');
      const groupColumns = columnsOf(history, 'experiment_groups');
      const groupIds = new Map<number, number>();
      for (const g of bundle.groups) groupIds.set(g.key, insertRow(history, 'experiment_groups', g.row, groupColumns, {}));
      const newIds = new Map<number, number>();
      const metric = history.db.prepare(`INSERT INTO metrics (experiment, name, value, unit, subject) VALUES (?, ?, ?, ?, ?)`);
      const artefact = history.db.prepare(`INSERT INTO artefacts (experiment, kind, path, bytes) VALUES (?, ?, ?, ?)`);
      const event = history.db.prepare(`INSERT INTO events (experiment, seq, time, level, text) VALUES (?, ?, ?, ?, ?)`);
      const tag = history.db.prepare(`INSERT OR IGNORE INTO tags (experiment, tag) VALUES (?, ?)`);
      const details = history.db.prepare(`INSERT INTO details (experiment, json) VALUES (?, ?)`);
      for (const e of bundle.experiments) {
        const id = insertRow(history, 'experiments', e.row, experimentColumns, {
          owner_pid: null, group_id: e.group !== null ? groupIds.get(e.group) ?? null : null,
        });
        newIds.set(e.key, id);
        for (const m of e.metrics) metric.run(id, m.name, m.value, m.unit, m.subject);
        for (const a of e.artefacts) artefact.run(id, a.kind, relocate(e, a.path), a.bytes);
        for (const l of e.events) event.run(id, l.seq, l.time, l.level, l.text);
        for (const t of e.tags) tag.run(id, t);
        if (e.details !== null) details.run(id, e.details);
      }
      const link = history.db.prepare(`UPDATE experiments SET parent_id = ?, input_experiment = ? WHERE id = ?`);
      for (const e of bundle.experiments) {
        const id = newIds.get(e.key)!;
        // Lineage inside the bundle is remapped; an input outside it is found here by content, when it is here.
        const sha = e.row.model_sha256;
        const input = e.input !== null ? newIds.get(e.input) ?? null : typeof sha === 'string' ? experimentWithOutput(history.db, sha, id) : null;
        link.run(e.parent !== null ? newIds.get(e.parent) ?? null : null, input, id);
      }
      return bundle.experiments.map((e) => ({ from: e.key, to: newIds.get(e.key)! }));
    });
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    // A record this history's schema refuses (a status it does not know, a missing value): the bundle's fault.
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^SQLITE_(CONSTRAINT|MISMATCH|ERROR)/.test(code)) {
      throw refused(source, `a record does not fit this history (${(e as Error).message})`, 'Export it again with this version of Whittle.');
    }
    throw e;
  }

  try {
    for (const m of moves) await rename(m.from, m.to);
    await rm(staging, { recursive: true, force: true });
  } catch (e) {
    // The records point at folders that could not be put in place: take them out again.
    history.transaction(() => { for (const { to } of ids) history.db.prepare(`DELETE FROM experiments WHERE id = ?`).run(to); });
    for (const m of moves) await rm(m.to, { recursive: true, force: true });
    await rm(staging, { recursive: true, force: true });
    throw new WhittleError('IO', `Whittle could not put the output folders of ${source} in place (${(e as Error).message}). Nothing was imported.`, { path: source }, { cause: e });
  }
  return { experiments: ids.length, ids, groups: bundle.groups.length, outputs: moves.map((m) => m.to) };
}
