import { describe, expect, it } from 'vitest';
import { href, parseHash } from '../../../renderer/lib/route.ts';
import { extractToken } from '../../../renderer/lib/token.ts';

describe('hash routes', () => {
  it('parses every page', () => {
    expect(parseHash('')).toEqual({ name: 'home' });
    expect(parseHash('#/')).toEqual({ name: 'home' });
    expect(parseHash('#/model?path=%2Fm%2Fa%20b.onnx')).toEqual({ name: 'model', path: '/m/a b.onnx' });
    expect(parseHash('#/evaluate?path=%2Fm.onnx&job=j-1&exp=7')).toEqual({ name: 'evaluate', path: '/m.onnx', jobId: 'j-1', experimentId: 7 });
    expect(parseHash('#/evaluate')).toEqual({ name: 'evaluate', path: '', jobId: null, experimentId: null });
    expect(parseHash('#/history/12')).toEqual({ name: 'historyDetail', id: 12 });
    expect(parseHash('#/history/0')).toMatchObject({ name: 'notFound' });
    expect(parseHash('#/nope')).toEqual({ name: 'notFound', hash: '/nope' });
  });

  it('round-trips history filters and leaves defaults out of the URL', () => {
    expect(href.history()).toBe('#/history');
    const link = href.history({ search: 'ppl run', status: 'done', sort: 'name', order: 'asc', page: 3 });
    const route = parseHash(link);
    expect(route).toEqual({ name: 'history', query: { search: 'ppl run', status: 'done', kind: '', tags: [], starred: false, sort: 'name', order: 'asc', page: 3 } });
    expect(parseHash('#/history?sort=bogus&page=-2')).toMatchObject({ query: { sort: 'created', page: 1 } });
  });

  it('round-trips tags (several, with odd characters), the starred filter and relevance', () => {
    const query = { search: 'gptq 4b', tags: ['a&b', 'int4', 'x y'], starred: true, sort: 'relevance' as const, kind: 'sensitivity' };
    const link = href.history(query);
    expect(link).toContain('tag=int4');
    expect(link).toContain('starred=1');
    expect(parseHash(link)).toEqual({ name: 'history', query: { status: '', order: 'desc', page: 1, ...query } });
    expect(parseHash('#/history?tag=a&tag=a&tag=&starred=0')).toMatchObject({ query: { tags: ['a'], starred: false } });
  });

  it('round-trips model and evaluate links with odd paths', () => {
    const path = '/home/me/my models/#1 & co?.onnx';
    expect(parseHash(href.model(path))).toEqual({ name: 'model', path });
    expect(parseHash(href.evaluate(path, { jobId: 'abc', experimentId: 4 }))).toEqual({ name: 'evaluate', path, jobId: 'abc', experimentId: 4 });
  });
});

describe('serve-mode token in the URL', () => {
  it('takes the token out of the hash and keeps the page', () => {
    expect(extractToken('#token=abc-123')).toEqual({ token: 'abc-123', hash: '#/' });
    expect(extractToken('#/history?q=x&token=t0k')).toEqual({ token: 't0k', hash: '#/history?q=x' });
    expect(extractToken('#/model?path=%2Fa.onnx')).toEqual({ token: null, hash: '#/model?path=%2Fa.onnx' });
    expect(extractToken('')).toEqual({ token: null, hash: '#/' });
  });
});
