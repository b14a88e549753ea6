/**
 * History bundles: experiments exported from one home and imported into an empty one come back exactly
 * (rows, metrics, logs, details, notes, tags, stars, lineage, parents, groups), only their ids new; output
 * folders travel when asked; a damaged, truncated, foreign or newer bundle is refused and changes nothing.
 */
import { mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportBundle, importBundle } from '../../../main/history/bundle/index.ts';
import { listTar, readMember, TarWriter } from '../../../main/history/bundle/tar.ts';
import { createHash } from 'node:crypto';
import { openHistory, type History } from '../../../main/history/index.ts';
import { isWhittleError } from '../../../main/engine/errors.ts';
import { tempDir } from '../../helpers/fixtures.ts';

const SHA_ORIGINAL = 'a'.repeat(64);
const SHA_PRUNED = 'b'.repeat(64);
const SHA_QUANT = 'c'.repeat(64);

let scratch: ReturnType<typeof tempDir>;
let a: History;
let b: History;

beforeEach(() => {
  scratch = tempDir('whittle-bundle-');
  a = openHistory({ home: path.join(scratch.dir, 'a') });
  b = openHistory({ home: path.join(scratch.dir, 'b') });
});

afterEach(() => {
  a.close();
  b.close();
  scratch.cleanup();
});

/** Three experiments of one model: evaluation → prune (an output folder on disk) → quantize of the prune, two in a sweep group. */
function seed(h: History): { ids: number[]; folder: string } {
  const evaluation = h.createExperiment({ name: 'original', kind: 'evaluate', recipe: { model: { path: '/models/m.onnx' } }, modelPath: '/models/m.onnx', modelBytes: 1000, modelSha256: SHA_ORIGINAL, status: 'running', notes: 'baseline, the "reference" run', tags: ['base', 'stories'] });
  h.addMetrics(evaluation, [{ name: 'perplexity', value: 4.25, unit: '', subject: 'model' }, { name: 'kl_mean', value: Number.NaN, unit: 'nats', subject: 'model' }]);
  h.appendLog(evaluation, [{ level: 'info', text: 'evaluating' }, { level: 'warn', text: 'short text' }]);
  h.setDetails(evaluation, { evaluation: { windows: 3 }, list: [1, 2.5, null] });
  h.finish(evaluation, 'done', null, 1234);

  const folder = path.join(scratch.dir, 'outputs-a', '2-pruned');
  mkdirSync(path.join(folder, 'sub'), { recursive: true });
  writeFileSync(path.join(folder, 'model.onnx'), Buffer.from([1, 2, 3, 4, 5]));
  writeFileSync(path.join(folder, 'model.onnx.data'), Buffer.alloc(70_000, 7));
  writeFileSync(path.join(folder, 'sub', 'whittle.json'), '{"x":1}');
  const group = Number(h.db.prepare(`INSERT INTO experiment_groups (created, name, kind, recipe_json, grid_json) VALUES (?, ?, 'sweep', ?, ?)`)
    .run('2026-01-01T00:00:00.000Z', 'sparsity sweep', '{"steps":[]}', '{"sparsity":[0.3,0.5]}').lastInsertRowid);

  const prune = h.createExperiment({ name: 'pruned 30 %', kind: 'prune', recipe: { steps: [{ type: 'prune', sparsity: 0.3 }] }, modelPath: '/models/m.onnx', modelSha256: SHA_ORIGINAL, parentId: evaluation, status: 'running' });
  h.addMetrics(prune, [{ name: 'perplexity', value: 4.25, unit: '', subject: 'original' }, { name: 'perplexity', value: 4.9, unit: '', subject: 'result' }, { name: 'bytes_on_disk', value: 70_005, unit: 'bytes', subject: 'result' }]);
  h.addArtefacts(prune, [{ kind: 'folder', path: folder, bytes: 70_005 }, { kind: 'model', path: path.join(folder, 'model.onnx'), bytes: 5 }]);
  h.finish(prune, 'done', null, 50);
  h.recordOutput(prune, SHA_PRUNED);

  const quant = h.createExperiment({ name: 'pruned then RTN 4-bit', kind: 'quantize', recipe: { steps: [{ type: 'quantize', method: 'rtn' }] }, modelPath: path.join(folder, 'model.onnx'), modelSha256: SHA_PRUNED, status: 'running', tags: ['candidate'] });
  h.linkInput(quant, SHA_PRUNED);
  h.addMetrics(quant, [{ name: 'perplexity', value: 5.1, unit: '', subject: 'result' }]);
  h.finish(quant, 'failed', { code: 'INTERNAL', message: 'it broke' }, 10);
  h.recordOutput(quant, SHA_QUANT);
  h.db.prepare(`UPDATE experiments SET group_id = ? WHERE id IN (?, ?)`).run(group, prune, quant);
  h.db.prepare(`UPDATE experiments SET starred = 1 WHERE id = ?`).run(quant);
  h.db.prepare(`UPDATE experiments SET pinned = 1 WHERE id = ?`).run(evaluation);
  return { ids: [evaluation, prune, quant], folder };
}

/** Everything recorded about the experiments, with ids replaced by their position in `ids`. */
function snapshot(h: History, ids: readonly number[], options: { paths?: (p: string) => string } = {}): unknown {
  const pos = (id: unknown): number | null => (typeof id === 'number' && ids.includes(id) ? ids.indexOf(id) : null);
  const mapPath = options.paths ?? ((p: string) => p);
  return ids.map((id) => {
    const row = h.db.prepare<Record<string, unknown>>(`SELECT * FROM experiments WHERE id = ?`).get(id)!;
    const { id: _id, parent_id, input_experiment, group_id, owner_pid: _pid, ...rest } = row;
    const group = typeof group_id === 'number' ? h.db.prepare<Record<string, unknown>>(`SELECT created, name, kind, recipe_json, grid_json FROM experiment_groups WHERE id = ?`).get(group_id) : null;
    return {
      rest, parent: pos(parent_id), input: pos(input_experiment), group,
      metrics: h.db.prepare(`SELECT name, value, unit, subject FROM metrics WHERE experiment = ? ORDER BY id`).all(id),
      artefacts: h.db.prepare<{ kind: string; path: string; bytes: number | null }>(`SELECT kind, path, bytes FROM artefacts WHERE experiment = ? ORDER BY id`).all(id).map((x) => ({ ...x, path: mapPath(x.path) })),
      events: h.db.prepare(`SELECT seq, time, level, text FROM events WHERE experiment = ? ORDER BY seq`).all(id),
      tags: h.db.prepare(`SELECT tag FROM tags WHERE experiment = ? ORDER BY tag`).all(id),
      details: h.db.prepare(`SELECT json FROM details WHERE experiment = ?`).all(id),
      fts: h.db.prepare(`SELECT name, kind, model, notes, tags FROM experiments_fts WHERE rowid = ?`).all(id),
    };
  });
}

const count = (h: History): number => h.db.prepare<number>('SELECT COUNT(*) FROM experiments').pluck().get()!;

async function refusal(file: string, outputsRoot: string): Promise<string> {
  const before = count(b);
  const e = await importBundle(b, file, { outputsRoot }).then(() => null, (x: unknown) => x);
  expect(isWhittleError(e), String(e)).toBe(true);
  expect(count(b)).toBe(before);
  expect(readdirSync(outputsRoot).filter((n) => !n.startsWith('keep'))).toEqual([]);
  return (e as Error).message;
}

describe('history bundles', () => {
  it('reproduce the experiments in an empty home: rows, metrics, logs, details, notes, tags, lineage, groups', async () => {
    const { ids } = seed(a);
    const file = path.join(scratch.dir, 'runs.whittle');
    const exported = await exportBundle(a, ids, file, { appVersion: '9.9.9' });
    expect(exported).toMatchObject({ path: file, experiments: 3, outputFiles: 0 });
    expect(statSync(file).size).toBe(exported.bytes);
    const names = (await listTar(file)).map((e) => e.name);
    expect(names[0]).toBe('whittle-bundle.json');
    expect(names.at(-1)).toBe('manifest.json');

    const imported = await importBundle(b, file, { outputsRoot: path.join(scratch.dir, 'outputs-b') });
    expect(imported.experiments).toBe(3);
    expect(imported.groups).toBe(1);
    expect(imported.ids.map((m) => m.from)).toEqual(ids);
    const newIds = imported.ids.map((m) => m.to);
    expect(snapshot(b, newIds)).toEqual(snapshot(a, ids));
    // The API's view and the lineage tree agree as well.
    for (const [i, id] of newIds.entries()) {
      const { id: _1, ...got } = b.get(id);
      const { id: _2, ...want } = a.get(ids[i]);
      expect(got).toEqual(want);
    }
    const shape = (h: History, id: number, map: number[]) => JSON.stringify(h.lineage(id).root, (k, v: unknown) => (k === 'id' && typeof v === 'number' ? map.indexOf(v) : v));
    expect(shape(b, newIds[2], newIds)).toEqual(shape(a, ids[2], ids));
    expect(b.lineage(newIds[2]).root.children[0].children[0].id).toBe(newIds[2]);
  });

  it('a subset keeps lineage to an experiment already in the target home by content', async () => {
    const { ids } = seed(a);
    const first = path.join(scratch.dir, 'prune.whittle');
    const second = path.join(scratch.dir, 'quant.whittle');
    await exportBundle(a, [ids[1]], first, { appVersion: '1' });
    await exportBundle(a, [ids[2]], second, { appVersion: '1' });
    const outputs = path.join(scratch.dir, 'outputs-b');
    const p = (await importBundle(b, first, { outputsRoot: outputs })).ids[0].to;
    const q = (await importBundle(b, second, { outputsRoot: outputs })).ids[0].to;
    expect(b.db.prepare<number | null>('SELECT input_experiment FROM experiments WHERE id = ?').pluck().get(q)).toBe(p);
    // The parent (the evaluation) was not exported: no dangling reference.
    expect(b.db.prepare<number | null>('SELECT parent_id FROM experiments WHERE id = ?').pluck().get(p)).toBeNull();
  });

  it('carries output folders when asked, unpacked under the target outputs with the artefacts pointing there', async () => {
    const { ids, folder } = seed(a);
    const file = path.join(scratch.dir, 'with-outputs.whittle');
    const exported = await exportBundle(a, ids, file, { appVersion: '1', withOutputs: true });
    expect(exported.outputFiles).toBe(3);
    const outputs = path.join(scratch.dir, 'outputs-b');
    const imported = await importBundle(b, file, { outputsRoot: outputs });
    expect(imported.outputs).toHaveLength(1);
    const to = imported.outputs[0];
    expect(path.dirname(to)).toBe(outputs);
    for (const rel of ['model.onnx', 'model.onnx.data', path.join('sub', 'whittle.json')]) {
      expect(readFileSync(path.join(to, rel)).equals(readFileSync(path.join(folder, rel)))).toBe(true);
    }
    expect(readdirSync(outputs)).toEqual([path.basename(to)]);
    const newIds = imported.ids.map((m) => m.to);
    const moved = (p: string) => (p.startsWith(folder) ? path.join(to, path.relative(folder, p)) : p);
    expect(snapshot(b, newIds)).toEqual(snapshot(a, ids, { paths: moved }));
    expect(b.get(newIds[1]).artefacts.map((x) => x.path)).toEqual([to, path.join(to, 'model.onnx')]);
  });

  describe('refuses and changes nothing', () => {
    let file: string;
    let outputs: string;
    beforeEach(async () => {
      const { ids } = seed(a);
      file = path.join(scratch.dir, 'good.whittle');
      await exportBundle(a, ids, file, { appVersion: '1', withOutputs: true });
      outputs = path.join(scratch.dir, 'outputs-b');
      mkdirSync(outputs, { recursive: true });
      seed(b);
    });

    it('a member whose bytes changed (bad checksum)', async () => {
      const bytes = readFileSync(file);
      const entry = (await listTar(file)).find((e) => e.name === 'experiments.json')!;
      bytes[entry.offset + 10] ^= 0x20;
      writeFileSync(file, bytes);
      expect(await refusal(file, outputs)).toMatch(/experiments\.json does not match its checksum/);
    });

    it('a damaged output file', async () => {
      const bytes = readFileSync(file);
      const entry = (await listTar(file)).find((e) => e.size === 70_000)!;
      bytes[entry.offset + 123] ^= 1;
      writeFileSync(file, bytes);
      expect(await refusal(file, outputs)).toMatch(/does not match its checksum/);
    });

    it('a truncated file', async () => {
      truncateSync(file, Math.floor(statSync(file).size / 2));
      expect(await refusal(file, outputs)).toMatch(/incomplete/);
    });

    it('a truncated file that lost only its manifest', async () => {
      const last = (await listTar(file)).at(-1)!;
      truncateSync(file, last.offset - 512);
      expect(await refusal(file, outputs)).toMatch(/incomplete|manifest/);
    });

    it('a file that is not a bundle, and a tar that is not Whittle\'s', async () => {
      const text = path.join(scratch.dir, 'notes.txt');
      writeFileSync(text, 'hello\n'.repeat(200));
      expect(await refusal(text, outputs)).toMatch(/not a Whittle bundle/);
      const tar = path.join(scratch.dir, 'other.tar');
      const w = await TarWriter.create(tar);
      await w.addBuffer('readme.txt', Buffer.from('hi'));
      await w.finish();
      expect(await refusal(tar, outputs)).toMatch(/not a Whittle bundle/);
    });

    it('a bundle of a newer format', async () => {
      const newer = path.join(scratch.dir, 'newer.whittle');
      const w = await TarWriter.create(newer);
      await w.addBuffer('whittle-bundle.json', Buffer.from(JSON.stringify({ format: 'whittle-bundle', version: 99, app: '7.0.0' })));
      await w.finish();
      expect(await refusal(newer, outputs)).toMatch(/newer Whittle \(7\.0\.0\).*Update Whittle/);
    });

    it('a well-formed bundle whose record this history refuses (an unknown status): nothing half-imported', async () => {
      // Rewritten with honest checksums, so only the database can object.
      const entries = await listTar(file);
      const rewritten = path.join(scratch.dir, 'odd.whittle');
      const w = await TarWriter.create(rewritten);
      const members: { name: string; bytes: number; sha256: string }[] = [];
      let manifest: Record<string, unknown> = {};
      for (const e of entries) {
        let data = await readMember(file, e);
        if (e.name === 'manifest.json') { manifest = JSON.parse(data.toString('utf8')) as Record<string, unknown>; continue; }
        if (e.name === 'experiments.json') {
          const list = JSON.parse(data.toString('utf8')) as { row: Record<string, unknown> }[];
          list[2].row.status = 'weird';
          data = Buffer.from(JSON.stringify(list));
        }
        await w.addBuffer(e.name, data);
        members.push({ name: e.name, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') });
      }
      await w.addBuffer('manifest.json', Buffer.from(JSON.stringify({ ...manifest, members })));
      await w.finish();
      expect(await refusal(rewritten, outputs)).toMatch(/a record does not fit this history/);
    });

    it('a missing file', async () => {
      const e = await importBundle(b, path.join(scratch.dir, 'nope.whittle'), { outputsRoot: outputs }).then(() => null, (x: unknown) => x);
      expect(isWhittleError(e) && e.code === 'NOT_FOUND').toBe(true);
    });
  });

  it('refuses to export a running experiment or an unknown id, and leaves no file', async () => {
    const running = a.createExperiment({ name: 'busy', kind: 'evaluate', recipe: {}, modelPath: '/m.onnx', status: 'running' });
    const file = path.join(scratch.dir, 'x.whittle');
    await expect(exportBundle(a, [running], file, { appVersion: '1' })).rejects.toThrow(/is running/);
    await expect(exportBundle(a, [running + 100], file, { appVersion: '1' })).rejects.toThrow(/no experiment/);
    expect(readdirSync(scratch.dir).filter((n) => n.includes('x.whittle'))).toEqual([]);
  });
});
