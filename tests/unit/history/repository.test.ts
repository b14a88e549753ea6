import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Metric } from '../../../preload/contract.ts';
import { WhittleError } from '../../../main/engine/errors.ts';
import { openHistory, pickHeadline, type History, type NewExperiment } from '../../../main/history/index.ts';
import { tempDir } from '../../helpers/fixtures.ts';

let scratch: ReturnType<typeof tempDir>;
let h: History;
beforeEach(() => {
  scratch = tempDir('whittle-history-');
  h = openHistory({ home: scratch.dir });
});
afterEach(() => {
  h.close();
  scratch.cleanup();
});

function make(over: Partial<NewExperiment> = {}): number {
  return h.createExperiment({ name: 'exp', kind: 'evaluate', recipe: { model: { path: '/models/a.onnx' } }, modelPath: '/models/a.onnx', ...over });
}

const m = (name: string, value: number, subject = 'model', unit = ''): Metric => ({ name, value, unit, subject });

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WhittleError);
    return (e as WhittleError).code;
  }
  throw new Error('expected a WhittleError');
}

describe('experiments', () => {
  it('round-trips an experiment with everything recorded for it', () => {
    const recipe = { version: 1, model: { path: '/models/a.onnx' }, evaluation: { perplexity: { text: 't.txt', window: 64 } }, extra: [1, 'two'] };
    const parent = make({ name: 'original' });
    const id = make({ name: 'q4', kind: 'quantize', recipe, modelBytes: 1234, modelSha256: 'ab'.repeat(32), parentId: parent, tags: ['b', 'a', 'a'] });
    expect(h.get(id).status).toBe('queued');
    h.markRunning(id);
    expect(h.status(id)).toBe('running');
    h.addMetrics(id, [m('perplexity', 4.5, 'result'), m('perplexity', 4.2, 'original'), m('diverged', Number.POSITIVE_INFINITY), m('undefined', Number.NaN)]);
    h.addArtefacts(id, [{ kind: 'model', path: '/out/q4.onnx', bytes: 99 }, { kind: 'folder', path: '/out', bytes: null }]);
    expect(h.appendLog(id, [{ level: 'info', text: 'one' }, { level: 'warn', text: 'two' }])).toBe(2);
    expect(h.appendLog(id, { level: 'error', text: 'three' })).toBe(3);
    h.setDetails(id, { perDocument: [1.5, 2.5] });
    h.finish(id, 'done', null, 1234.6);

    const d = h.get(id);
    expect(d).toMatchObject({
      id, name: 'q4', kind: 'quantize', status: 'done', modelPath: '/models/a.onnx', modelBytes: 1234, modelSha256: 'ab'.repeat(32),
      durationMs: 1235, error: null, recipe, tags: ['a', 'b'], notes: '', details: { perDocument: [1.5, 2.5] },
    });
    expect(d.finished).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(d.metrics.map((x) => [x.name, x.subject, x.value])).toEqual([
      ['perplexity', 'result', 4.5], ['perplexity', 'original', 4.2], ['diverged', 'model', Number.POSITIVE_INFINITY], ['undefined', 'model', Number.NaN],
    ]);
    expect(d.artefacts).toEqual([{ kind: 'model', path: '/out/q4.onnx', bytes: 99 }, { kind: 'folder', path: '/out', bytes: null }]);
    expect(d.log.map((l) => [l.seq, l.level, l.text])).toEqual([[1, 'info', 'one'], [2, 'warn', 'two'], [3, 'error', 'three']]);
    expect(d.headline).toEqual([m('perplexity', 4.5, 'result')]);
  });

  it('stores a failure with its error', () => {
    const id = make();
    h.markRunning(id);
    h.finish(id, 'failed', { code: 'MODEL_PARSE', message: 'not ONNX' }, 3);
    expect(h.get(id)).toMatchObject({ status: 'failed', error: { code: 'MODEL_PARSE', message: 'not ONNX' }, durationMs: 3 });
  });

  it('answers NOT_FOUND for an experiment that does not exist', () => {
    expect(code(() => h.get(404))).toBe('NOT_FOUND');
    expect(code(() => h.finish(404, 'done'))).toBe('NOT_FOUND');
    expect(code(() => h.update(404, { name: 'x' }))).toBe('NOT_FOUND');
    expect(code(() => h.delete(404))).toBe('NOT_FOUND');
  });

  it('updates name, notes and tags', () => {
    const id = make();
    const d = h.update(id, { name: '  renamed ', notes: 'looks good', tags: ['keep', ' int4 ', 'keep'] });
    expect(d).toMatchObject({ name: 'renamed', notes: 'looks good', tags: ['int4', 'keep'] });
    expect(h.update(id, { tags: [] }).tags).toEqual([]);
    expect(h.get(id).name).toBe('renamed');
    expect(code(() => h.update(id, { name: '   ' }))).toBe('INVALID_INPUT');
  });

  it('deletes an experiment with everything hanging off it; results made from it keep existing', () => {
    const id = make();
    const child = make({ parentId: id });
    h.addMetrics(id, [m('perplexity', 4)]);
    h.addArtefacts(id, [{ kind: 'model', path: '/x', bytes: 1 }]);
    h.appendLog(id, { level: 'info', text: 'x' });
    h.setDetails(id, { a: 1 });
    h.update(id, { tags: ['t'] });
    h.finish(id, 'done');
    h.finish(child, 'done');
    h.delete(id);
    for (const table of ['metrics', 'artefacts', 'events', 'details', 'tags']) {
      expect(h.db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE experiment = ?`).get(id), table).toEqual({ n: 0 });
    }
    expect(code(() => h.get(id))).toBe('NOT_FOUND');
    expect(h.db.prepare('SELECT parent_id FROM experiments WHERE id = ?').get(child)).toEqual({ parent_id: null });
  });

  it('refuses to delete a running or queued experiment', () => {
    const queued = make();
    const running = make();
    h.markRunning(running);
    try {
      h.delete(running);
      expect.unreachable();
    } catch (e) {
      expect((e as WhittleError).code).toBe('INVALID_INPUT');
      expect((e as WhittleError).message).toBe(`Experiment ${running} is running. Cancel it first, then delete it.`);
    }
    expect(code(() => h.delete(queued))).toBe('INVALID_INPUT');
    expect(h.status(running)).toBe('running');
  });
});

describe('list', () => {
  function seed(): number[] {
    const ids: number[] = [];
    const rows: [string, string, string, 'done' | 'failed' | 'cancelled'][] = [
      ['Alpha eval', 'evaluate', '/models/tiny_llama.onnx', 'done'],
      ['beta 4-bit', 'quantize', '/models/phi.onnx', 'done'],
      ['Gamma eval', 'evaluate', '/models/phi.onnx', 'failed'],
      ['delta 8-bit', 'quantize', '/models/tiny_llama.onnx', 'cancelled'],
      ['100%_sure', 'evaluate', '/models/x.onnx', 'done'],
    ];
    for (const [i, [name, kind, modelPath, status]] of rows.entries()) {
      const id = make({ name, kind, modelPath });
      h.db.prepare('UPDATE experiments SET created = ? WHERE id = ?').run(`2030-01-0${i + 1}T00:00:00.000Z`, id);
      h.finish(id, status);
      ids.push(id);
    }
    h.addMetrics(ids[1], [m('bytes_on_disk', 10, 'result', 'bytes'), m('perplexity', 5, 'original'), m('perplexity', 6, 'result'), m('other', 1, 'result')]);
    return ids;
  }

  it('lists newest first by default, with a total and headline metrics', () => {
    const ids = seed();
    const r = h.list();
    expect(r.total).toBe(5);
    expect(r.items.map((i) => i.id)).toEqual([...ids].reverse());
    const beta = r.items.find((i) => i.id === ids[1])!;
    expect(beta.headline).toEqual([m('perplexity', 6, 'result'), m('bytes_on_disk', 10, 'result', 'bytes')]);
    expect(beta).toMatchObject({ name: 'beta 4-bit', kind: 'quantize', status: 'done', modelPath: '/models/phi.onnx' });
  });

  it('searches names, kinds and model paths by word prefix, case-insensitively; text without words is matched literally', () => {
    const ids = seed();
    // "eval" is a prefix of the names' "eval" and of the kind "evaluate".
    expect(h.list({ search: 'EVAL' }).items.map((i) => i.id).sort()).toEqual([ids[0], ids[2], ids[4]]);
    expect(h.list({ search: 'eval gamma' }).items.map((i) => i.id)).toEqual([ids[2]]);
    expect(h.list({ search: 'tiny_llama' }).items.map((i) => i.id).sort()).toEqual([ids[0], ids[3]]);
    expect(h.list({ search: '%' }).items.map((i) => i.id)).toEqual([ids[4]]);
    expect(h.list({ search: '%_' }).items.map((i) => i.id)).toEqual([ids[4]]);
    expect(h.list({ search: '_%' })).toEqual({ items: [], total: 0 });
    expect(h.list({ search: 'nothing like this' })).toEqual({ items: [], total: 0 });
  });

  it('filters by status and kind', () => {
    const ids = seed();
    expect(h.list({ status: 'done' }).items.map((i) => i.id).sort()).toEqual([ids[0], ids[1], ids[4]]);
    expect(h.list({ kind: 'quantize' }).items.map((i) => i.id).sort()).toEqual([ids[1], ids[3]]);
    expect(h.list({ kind: 'quantize', status: 'done', search: 'beta' }).items.map((i) => i.id)).toEqual([ids[1]]);
  });

  it('sorts by name (case-insensitive), status and kind in both orders', () => {
    seed();
    expect(h.list({ sort: 'name', order: 'asc' }).items.map((i) => i.name)).toEqual(['100%_sure', 'Alpha eval', 'beta 4-bit', 'delta 8-bit', 'Gamma eval']);
    expect(h.list({ sort: 'name', order: 'desc' }).items.map((i) => i.name)).toEqual(['Gamma eval', 'delta 8-bit', 'beta 4-bit', 'Alpha eval', '100%_sure']);
    expect(h.list({ sort: 'status', order: 'asc' }).items.map((i) => i.status)).toEqual(['cancelled', 'done', 'done', 'done', 'failed']);
    expect(h.list({ sort: 'kind', order: 'desc' }).items.map((i) => i.kind)).toEqual(['quantize', 'quantize', 'evaluate', 'evaluate', 'evaluate']);
    expect(h.list({ sort: 'created', order: 'asc' }).items.map((i) => i.name)[0]).toBe('Alpha eval');
  });

  it('pages with limit and offset; the total ignores paging', () => {
    const ids = seed();
    const pages = [0, 2, 4].map((offset) => h.list({ sort: 'created', order: 'asc', limit: 2, offset }));
    expect(pages.map((p) => p.total)).toEqual([5, 5, 5]);
    expect(pages.flatMap((p) => p.items.map((i) => i.id))).toEqual(ids);
    expect(h.list({ offset: 10 }).items).toEqual([]);
  });
});

describe('headline', () => {
  it('prefers key metrics, and the result over the model over the original', () => {
    const picked = pickHeadline([m('other', 1), m('perplexity', 5, 'original'), m('perplexity', 4, 'model'), m('prefill_ms', 3, 'result', 'ms'), m('decode_tokens_per_s', 9, 'original')]);
    expect(picked).toEqual([m('perplexity', 4, 'model'), m('decode_tokens_per_s', 9, 'original'), m('prefill_ms', 3, 'result', 'ms')]);
  });
  it('falls back to the first metrics when none is a key metric', () => {
    expect(pickHeadline([m('a', 1), m('a', 2, 'result'), m('b', 3), m('c', 4, 'original')])).toEqual([m('a', 1), m('b', 3)]);
  });
});

describe('recent models', () => {
  it('keeps the most recently opened first and says whether each file still exists', async () => {
    const present = path.join(scratch.dir, 'present.onnx');
    writeFileSync(present, 'x');
    h.touchRecentModel('/gone/model.onnx');
    await new Promise((r) => setTimeout(r, 5));
    h.touchRecentModel(present);
    expect(await h.recentModels()).toEqual([
      { path: present, lastOpened: expect.any(String), exists: true },
      { path: '/gone/model.onnx', lastOpened: expect.any(String), exists: false },
    ]);
    await new Promise((r) => setTimeout(r, 5));
    h.touchRecentModel('/gone/model.onnx');
    expect((await h.recentModels()).map((r) => r.path)).toEqual(['/gone/model.onnx', present]);
    expect(await h.recentModels(1)).toHaveLength(1);
  });

  it('keeps at most the given number of entries', async () => {
    for (let i = 0; i < 5; i++) h.touchRecentModel(`/m${i}.onnx`, 3);
    expect(await h.recentModels(10)).toHaveLength(3);
  });
});

describe('evaluation cache', () => {
  it('stores metrics by model hash and settings hash, non-finite values included', () => {
    expect(h.cacheGet('sha', 'settings')).toBeNull();
    h.cachePut('sha', 'settings', [m('perplexity', 4.2), m('diverged', Number.POSITIVE_INFINITY), m('nan', Number.NaN)]);
    h.cachePut('sha', 'other', [m('perplexity', 9)]);
    const hit = h.cacheGet('sha', 'settings')!;
    expect(hit.metrics).toEqual([m('perplexity', 4.2), m('diverged', Number.POSITIVE_INFINITY), m('nan', Number.NaN)]);
    expect(hit.created).toMatch(/^\d{4}-/);
    h.cachePut('sha', 'settings', [m('perplexity', 4.3)]);
    expect(h.cacheGet('sha', 'settings')!.metrics).toEqual([m('perplexity', 4.3)]);
    expect(h.cacheGet('sha', 'other')!.metrics).toEqual([m('perplexity', 9)]);
  });
});
