/** The addresses of edit-and-re-run and of a sweep's page. */
import { describe, expect, it } from 'vitest';
import { editHref, href, parseHash } from '../../../renderer/lib/route.ts';

describe('workspace routes', () => {
  it('opens a wizard pre-filled from an experiment (from=ID), attached to no job', () => {
    const link = editHref('quantize', '/m/a b.onnx', 12)!;
    expect(parseHash(link)).toEqual({ name: 'quantize', path: '/m/a b.onnx', jobId: null, experimentId: null, from: 12 });
    expect(parseHash(editHref('prune', '/m.onnx', 3)!)).toMatchObject({ name: 'prune', from: 3 });
    expect(editHref('evaluate', '/m.onnx', 3)).toBeNull();
    expect(parseHash('#/quantize?path=%2Fm.onnx&from=x')).toEqual({ name: 'quantize', path: '/m.onnx', jobId: null, experimentId: null });
  });

  it('names a sweep by its group id', () => {
    expect(parseHash(href.sweep(7))).toEqual({ name: 'sweep', id: 7 });
    expect(parseHash('#/sweeps/0')).toMatchObject({ name: 'notFound' });
  });
});
