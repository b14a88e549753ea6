/**
 * The operator chart's bars: every kind, most frequent first. With more than `maxBars + 1` kinds, the
 * rarest share one bar that says how many kinds it holds, so no kind is left out of the chart.
 */
export function opChartRows(histogram: Record<string, number>, maxBars: number): { op: string; count: number }[] {
  const ops = Object.entries(histogram).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  // One kind past the limit gets its own bar: a bar for "1 other kind" would say less than its name.
  if (ops.length <= maxBars + 1) return ops.map(([op, count]) => ({ op, count }));
  const shown = ops.slice(0, maxBars);
  const rest = ops.slice(maxBars);
  return [
    ...shown.map(([op, count]) => ({ op, count })),
    { op: `${rest.length} other kinds`, count: rest.reduce((n, [, c]) => n + c, 0) },
  ];
}
