import { describe, expect, it } from 'vitest';
import { href, parseHash } from '../../../renderer/lib/route.ts';

describe('the compare and Pareto routes', () => {
  it('round-trip the compared ids and the baseline', () => {
    expect(href.compare([3, 1, 7], 1)).toBe('#/compare?ids=3%2C1%2C7&baseline=1');
    expect(parseHash(href.compare([3, 1, 7], 1))).toEqual({ name: 'compare', ids: [3, 1, 7], baseline: 1 });
    expect(parseHash(href.compare([4, 5]))).toEqual({ name: 'compare', ids: [4, 5], baseline: null });
  });

  it('drop ids that are not positive whole numbers, and repeats', () => {
    expect(parseHash('#/compare?ids=2,x,0,2,-1,9&baseline=abc')).toEqual({ name: 'compare', ids: [2, 9], baseline: null });
    expect(parseHash('#/compare')).toEqual({ name: 'compare', ids: [], baseline: null });
  });

  it('open the Pareto view by a model\'s sha256 or its path', () => {
    const sha = 'ab'.repeat(32);
    expect(parseHash(href.pareto({ sha256: sha }))).toEqual({ name: 'pareto', sha256: sha, path: null });
    expect(parseHash(href.pareto({ path: '/m/model.onnx' }))).toEqual({ name: 'pareto', sha256: null, path: '/m/model.onnx' });
    expect(parseHash('#/pareto?model=not-a-sha')).toEqual({ name: 'pareto', sha256: null, path: null });
  });
});
