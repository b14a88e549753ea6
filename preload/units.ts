/**
 * Sizes in binary units (KiB, MiB, GiB: powers of 1024), the one convention of the UI, the CLI and the
 * reports. Dependency-free, so main, preload and renderer share it.
 */
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** 1_048_576 → "1.00 MiB", 270_336 → "264 KiB", 512 → "512 B"; null, undefined and non-finite → "—". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  const sign = bytes < 0 ? '-' : '';
  let value = Math.abs(bytes);
  if (value < 1024) return `${sign}${Math.round(value)} B`;
  let unit = 0;
  while (value >= 1024 && unit < BINARY_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  // Three significant digits, and never "1024 KiB": a value that rounds up to 1024 moves to the next unit.
  let digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  if (Number(value.toFixed(digits)) >= 1024 && unit < BINARY_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
    digits = 2;
  }
  return `${sign}${value.toFixed(digits)} ${BINARY_UNITS[unit]}`;
}
