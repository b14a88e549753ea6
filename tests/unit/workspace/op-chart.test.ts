/** The operator chart keeps every operator kind. */
import { describe, expect, it } from 'vitest';
import { opChartRows } from '../../../renderer/lib/op-chart.ts';

const histogram = (kinds: number): Record<string, number> =>
  Object.fromEntries(Array.from({ length: kinds }, (_, i) => [`Op${String(i).padStart(2, '0')}`, 100 - i]));

describe('operator chart', () => {
  it('charts a 21st kind (the one that used to be dropped)', () => {
    const rows = opChartRows(histogram(21), 20);
    expect(rows).toHaveLength(21);
    expect(rows.at(-1)).toEqual({ op: 'Op20', count: 80 });
  });

  it('groups the rarest kinds into one bar that counts them, and loses no node', () => {
    const rows = opChartRows(histogram(30), 20);
    expect(rows).toHaveLength(21);
    expect(rows.at(-1)).toEqual({ op: '10 other kinds', count: Array.from({ length: 10 }, (_, i) => 80 - i).reduce((a, b) => a + b, 0) });
    const total = rows.reduce((n, r) => n + r.count, 0);
    expect(total).toBe(Object.values(histogram(30)).reduce((a, b) => a + b, 0));
  });
});
