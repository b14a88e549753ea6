// Long training curves are thinned for the charts (every k-th step, every held-out point, the last step),
// so a run of thousands of steps keeps the page responsive; short curves are drawn whole.
import { describe, expect, it } from 'vitest';
import { chartRows, curveRows, MAX_CHART_ROWS } from '../../../renderer/lib/train-curve.ts';
import type { CurvePoint } from '../../../preload/series.ts';

const curve = (n: number): CurvePoint[] => Array.from({ length: n }, (_, i) => ({
  step: i + 1, totalSteps: n, loss: 5 - i / n, lr: 1e-3, gradNorm: 1, tokensPerSecond: 100, etaSeconds: n - i, ...((i + 1) % 250 === 0 ? { evalLoss: 4 } : {}),
}));

describe('chart rows', () => {
  it('draws a short curve whole', () => {
    const rows = curveRows(curve(120));
    expect(chartRows(rows)).toEqual(rows);
  });

  it('thins a long curve to about MAX_CHART_ROWS rows, keeping every held-out point and the last step', () => {
    const rows = curveRows(curve(5000));
    const drawn = chartRows(rows);
    expect(drawn.length).toBeLessThanOrEqual(MAX_CHART_ROWS + 5000 / 250 + 1);
    expect(drawn.length).toBeGreaterThan(MAX_CHART_ROWS / 2);
    expect(drawn.filter((r) => r.evalLoss !== null)).toHaveLength(5000 / 250);
    expect(drawn.at(-1)?.step).toBe(5000);
    expect(drawn[0].step).toBe(1);
    for (let i = 1; i < drawn.length; i++) expect(drawn[i].step).toBeGreaterThan(drawn[i - 1].step);
  });
});
