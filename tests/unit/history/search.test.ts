import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JOB_KINDS } from '../../../preload/methods.ts';
import { openHistory, type History, type ListQuery, type NewExperiment } from '../../../main/history/index.ts';
import { ftsMatchExpression, searchWords } from '../../../main/history/search.ts';
import { tempDir } from '../../helpers/fixtures.ts';

let scratch: ReturnType<typeof tempDir>;
let h: History;
beforeEach(() => {
  scratch = tempDir('whittle-search-');
  h = openHistory({ home: scratch.dir });
});
afterEach(() => {
  h.close();
  scratch.cleanup();
});

function make(over: Partial<NewExperiment> = {}): number {
  const id = h.createExperiment({ name: 'exp', kind: 'evaluate', recipe: {}, modelPath: '/models/stories260K.onnx', ...over });
  h.finish(id, 'done');
  return id;
}

const ids = (q: ListQuery): number[] => h.list(q).items.map((i) => i.id);
const sorted = (q: ListQuery): number[] => ids(q).sort((a, b) => a - b);

describe('the search expression', () => {
  it('quotes every word as a prefix and ANDs them', () => {
    expect(ftsMatchExpression('gptq  calibration')).toBe('"gptq"* AND "calibration"*');
    expect(ftsMatchExpression('say "hi"')).toBe('"say"* AND """hi"""*');
  });

  it('also matches a word split where digits meet letters', () => {
    expect(ftsMatchExpression('4b')).toBe('("4b"* OR "4 b"*)');
    expect(ftsMatchExpression('int8')).toBe('("int8"* OR "int 8"*)');
  });

  it('has nothing to search in text without letters or digits', () => {
    expect(ftsMatchExpression('')).toBeNull();
    expect(ftsMatchExpression('  % -- * ')).toBeNull();
    expect(searchWords('% gptq -')).toEqual(['gptq']);
  });
});

describe('full-text search', () => {
  it("finds a note's words, whatever their case, and follows edits of the notes", () => {
    const a = make({ name: 'first', notes: 'Perplexity went up after the embedding was quantized' });
    make({ name: 'second', notes: 'nothing to see' });
    expect(ids({ search: 'embedding' })).toEqual([a]);
    expect(ids({ search: 'QUANTIZED perplexity' })).toEqual([a]);
    expect(ids({ search: 'embedding nothing' })).toEqual([]);
    h.update(a, { notes: 'rewritten' });
    expect(ids({ search: 'embedding' })).toEqual([]);
    expect(ids({ search: 'rewritten' })).toEqual([a]);
  });

  it('finds a tag, and follows tags added and removed', () => {
    const a = make({ tags: ['shipping-candidate'] });
    const b = make();
    expect(ids({ search: 'shipping' })).toEqual([a]);
    h.update(b, { tags: ['baseline'] });
    h.update(a, { tags: [] });
    expect(ids({ search: 'shipping' })).toEqual([]);
    expect(ids({ search: 'baseline' })).toEqual([b]);
  });

  it('matches prefixes as the user types ("gptq 4b" finds "GPTQ 4-bit")', () => {
    const gptq = make({ name: 'GPTQ 4-bit g32 · stories260K', kind: 'quantize' });
    const rtn = make({ name: 'RTN 8-bit · stories260K', kind: 'quantize' });
    for (const typed of ['g', 'gp', 'gptq', 'gptq 4', 'gptq 4b', 'gptq 4-b', 'gptq 4-bit g3']) expect(ids({ search: typed }), typed).toEqual([gptq]);
    expect(sorted({ search: 'stories26' })).toEqual([gptq, rtn]);
    expect(sorted({ search: 'quant' })).toEqual([gptq, rtn]);
    expect(ids({ search: '8b' })).toEqual([rtn]);
  });

  it('finds a word of 3 characters or more inside names and model paths ("260K" finds "stories260K")', () => {
    const small = make({ name: 'GPTQ 4-bit · stories260K', kind: 'quantize', modelPath: '/m/stories260K/model.onnx' });
    const big = make({ name: 'RTN 8-bit', kind: 'quantize', modelPath: '/m/TinyStories15M/model.onnx' });
    const noted = make({ name: 'plain', modelPath: '/m/other.onnx', notes: 'compared against stories260K' });
    expect(ids({ search: '260K' })).toEqual([small]);
    expect(ids({ search: '260k' })).toEqual([small]);
    expect(ids({ search: 'ories15' })).toEqual([big]);
    // Inside the model path "TinyStories15M"; the notes as words only.
    expect(sorted({ search: 'stories' })).toEqual([small, big, noted]);
    expect(sorted({ search: 'tories' })).toEqual([small, big]);
    // Every word must match, as a word or inside a name or model.
    expect(ids({ search: 'gptq 260K' })).toEqual([small]);
    expect(ids({ search: 'rtn 260K' })).toEqual([]);
    // Words shorter than 3 characters match as words only.
    expect(ids({ search: '15' })).toEqual([]);
    // Follows renames and deletions.
    h.update(big, { name: 'RTN 8-bit · renamed-xyzzy' });
    expect(ids({ search: 'zzy' })).toEqual([big]);
    h.delete(big);
    expect(ids({ search: 'ories15' })).toEqual([]);
  });

  it('ranks whole-word matches before matches inside words, pinned first, under filters and pages', () => {
    const inside = make({ name: 'mystories run', kind: 'quantize' });
    const word = make({ name: 'stories run', kind: 'quantize', modelPath: '/m/x.onnx' });
    const other = make({ name: 'bestories', kind: 'prune', modelPath: '/m/y.onnx' });
    expect(ids({ search: 'stories', sort: 'relevance' }).slice(0, 1)).toEqual([word]);
    expect(ids({ search: 'stories', sort: 'relevance', kind: 'quantize' })).toEqual([word, inside]);
    h.update(other, { pinned: true });
    expect(ids({ search: 'stories', sort: 'relevance' })[0]).toBe(other);
    expect(h.list({ search: 'tories', kind: 'quantize', limit: 1 }).total).toBe(2);
    expect(ids({ search: 'tories', kind: 'quantize', sort: 'name', order: 'asc', limit: 1, offset: 1 })).toEqual([word]);
  });

  it('takes quotes, stars, dashes, colons and FTS operators as text, never failing', () => {
    const a = make({ name: 'say "hi" — NOT a test: done', notes: 'x AND y OR z' });
    make({ name: 'other' });
    for (const odd of ['"', '""', '"hi', 'hi"', '*', 'hi*', '-', '-hi', 'name:hi', ':', 'NOT', 'AND', 'OR', 'x AND', '(', ')', 'NEAR(hi', '^hi', '{a b}', '\'', '+', 'a|b']) {
      expect(() => h.list({ search: odd }), odd).not.toThrow();
    }
    expect(ids({ search: '"hi"' })).toEqual([a]);
    expect(ids({ search: 'test:' })).toEqual([a]);
    expect(ids({ search: '-hi' })).toEqual([a]);
    expect(ids({ search: 'NOT' })).toEqual([a]);
    expect(ids({ search: 'AND OR' })).toEqual([a]);
    expect(ids({ search: 'name:other' })).toEqual([]);
  });

  it('ignores diacritics both ways', () => {
    const a = make({ notes: 'Évaluation du modèle café' });
    const b = make({ name: 'cafe run' });
    expect(sorted({ search: 'cafe' })).toEqual([a, b]);
    expect(sorted({ search: 'café' })).toEqual([a, b]);
    expect(ids({ search: 'evaluation modele' })).toEqual([a]);
    expect(ids({ search: 'ÉVALUATION' })).toEqual([a]);
  });

  it('ranks by relevance when asked: a word in the name before the same word in the notes', () => {
    const inNotes = make({ name: 'plain run', notes: 'compare with the calibration run later' });
    const inName = make({ name: 'calibration sweep', notes: '' });
    expect(ids({ search: 'calibration', sort: 'relevance' })).toEqual([inName, inNotes]);
    // Any other sort keeps its order among the matches.
    expect(ids({ search: 'calibration', sort: 'created', order: 'asc' })).toEqual([inNotes, inName]);
    expect(ids({ search: 'calibration', sort: 'name', order: 'desc' })).toEqual([inNotes, inName]);
  });

  it('puts a pinned match first, ahead of better matches, with or without other filters', () => {
    const inNotes = make({ name: 'plain run', notes: 'calibration again', kind: 'quantize' });
    const inName = make({ name: 'calibration sweep', kind: 'quantize' });
    make({ name: 'pinned but unrelated', kind: 'quantize' });
    h.update(inNotes, { pinned: true });
    h.update(h.list({ search: 'unrelated' }).items[0].id, { pinned: true });
    expect(ids({ search: 'calibration', sort: 'relevance' })).toEqual([inNotes, inName]);
    expect(ids({ search: 'calibration', sort: 'relevance', kind: 'quantize' })).toEqual([inNotes, inName]);
    expect(ids({ search: 'calibration', sort: 'relevance', limit: 1, offset: 1 })).toEqual([inName]);
    expect(h.list({ search: 'calibration', sort: 'relevance', limit: 1 }).total).toBe(2);
  });

  it('matches text without words literally in names, models and notes', () => {
    const a = make({ name: '100%_sure' });
    const b = make({ notes: 'up 5% over baseline' });
    make({ name: 'plain' });
    expect(sorted({ search: '%' })).toEqual([a, b]);
    expect(ids({ search: '%_' })).toEqual([a]);
  });
});

describe('the full-text index across an upgrade', () => {
  it('is rebuilt from the experiments and their tags when the prefix indexes arrive (schema 5 → 6)', () => {
    const a = make({ name: 'GPTQ 4-bit', notes: 'outliers clipped', tags: ['keep'] });
    h.db.exec('DROP TABLE experiments_fts; CREATE VIRTUAL TABLE experiments_fts USING fts5(name, kind, model, notes, tags)');
    h.db.pragma('user_version = 5');
    h.close();
    h = openHistory({ home: scratch.dir });
    expect(ids({ search: 'outli' })).toEqual([a]);
    expect(ids({ search: 'keep' })).toEqual([a]);
    expect(ids({ search: 'gptq 4b' })).toEqual([a]);
    const b = make({ notes: 'written after the upgrade' });
    expect(ids({ search: 'upgr' })).toEqual([b]);
  });
});

describe('filters and order', () => {
  it('filters by one tag or by every one of several tags', () => {
    const a = make({ tags: ['int4', 'keep'] });
    const b = make({ tags: ['int4'] });
    const c = make({ tags: ['keep'], kind: 'quantize' });
    expect(sorted({ tags: ['int4'] })).toEqual([a, b]);
    expect(sorted({ tags: ['keep'] })).toEqual([a, c]);
    expect(ids({ tags: ['int4', 'keep'] })).toEqual([a]);
    expect(ids({ tags: ['keep', 'keep'] }).sort((x, y) => x - y)).toEqual([a, c]);
    expect(ids({ tags: ['keep'], kind: 'quantize' })).toEqual([c]);
    expect(h.list({ tags: ['int4', 'missing'] })).toEqual({ items: [], total: 0 });
    expect(h.list({ tags: ['int4'] }).items.find((i) => i.id === a)?.tags).toEqual(['int4', 'keep']);
  });

  it('stars and pins: pinned first under every sort, a starred-only filter', () => {
    const [a, b, c, d] = ['delta', 'alpha', 'charlie', 'bravo'].map((name) => make({ name }));
    expect(h.update(c, { pinned: true })).toMatchObject({ pinned: true, starred: false });
    expect(h.update(b, { starred: true })).toMatchObject({ pinned: false, starred: true });
    h.update(d, { starred: true, pinned: true });

    expect(ids({})).toEqual([d, c, b, a]);
    expect(ids({ sort: 'created', order: 'asc' })).toEqual([c, d, a, b]);
    expect(ids({ sort: 'name', order: 'asc' })).toEqual([d, c, b, a]);
    expect(ids({ sort: 'name', order: 'desc' })).toEqual([c, d, a, b]);
    expect(sorted({ starred: true })).toEqual([b, d]);
    expect(ids({ starred: true, sort: 'name', order: 'asc' })).toEqual([d, b]);
    expect(h.list({}).items.map((i) => [i.id, i.starred, i.pinned])).toEqual([[d, true, true], [c, false, true], [b, true, false], [a, false, false]]);

    h.update(c, { pinned: false });
    h.update(d, { starred: false });
    expect(ids({})).toEqual([d, c, b, a]);
    expect(ids({ sort: 'name', order: 'asc' })).toEqual([d, b, c, a]);
    expect(ids({ starred: true })).toEqual([b]);
    expect(h.get(c)).toMatchObject({ pinned: false, starred: false });
  });

  it('pages through a filtered search with a total that does not depend on the page', () => {
    const made: number[] = [];
    for (let i = 0; i < 60; i++) made.push(make({ name: `run ${i}`, kind: i % 3 === 0 ? 'prune' : 'quantize', notes: i % 2 === 0 ? 'even calibration' : 'odd' }));
    const wanted = made.filter((_, i) => i % 3 === 0 && i % 2 === 0);
    const seen: number[] = [];
    for (let offset = 0; offset < 20; offset += 7) {
      const page = h.list({ kind: 'prune', search: 'calib', limit: 7, offset });
      expect(page.total).toBe(wanted.length);
      seen.push(...page.items.map((i) => i.id));
    }
    expect(seen).toEqual([...wanted].reverse());
    const all = h.list({ limit: 25, offset: 50 });
    expect(all.total).toBe(60);
    expect(all.items).toHaveLength(10);
    expect(h.list({ limit: 25, offset: 75 })).toEqual({ items: [], total: 60 });
  });

  it('answers every kind Whittle writes with its count, and kinds it does not know after them', () => {
    make({ kind: 'quantize' });
    make({ kind: 'quantize' });
    make({ kind: 'sensitivity' });
    make({ kind: 'zz-future' });
    const kinds = h.kinds();
    expect(kinds.map((k) => k.kind)).toEqual([...JOB_KINDS, 'zz-future']);
    expect(Object.fromEntries(kinds.map((k) => [k.kind, k.count]))).toMatchObject({ evaluate: 0, quantize: 2, sensitivity: 1, prune: 0, 'zz-future': 1 });
    for (const kind of ['evaluate', 'quantize', 'sensitivity', 'prune', 'train', 'distill']) expect(JOB_KINDS).toContain(kind);
  });

  it('answers the tags in use, most used first', () => {
    make({ tags: ['b', 'a'] });
    make({ tags: ['b'] });
    make({ tags: ['c'] });
    expect(h.tags()).toEqual([{ tag: 'b', count: 2 }, { tag: 'a', count: 1 }, { tag: 'c', count: 1 }]);
    expect(h.tags(1)).toEqual([{ tag: 'b', count: 2 }]);
  });
});
