/**
 * Number, size and time formatting for the UI. A fixed locale keeps what the user (and the end-to-end
 * tests) read identical on every machine.
 */
const LOCALE = 'en-US';

const integer = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });

/** 38675 → "38,675". */
export function formatInteger(n: number): string {
  return integer.format(Math.round(n));
}

/** A measured decimal with as many digits as its magnitude deserves: 4.22671 → "4.2267", 1234.5 → "1,234.5". */
export function formatDecimal(n: number, maxDigits?: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? '—' : n > 0 ? '∞' : '−∞';
  if (Number.isInteger(n) && maxDigits === undefined) return formatInteger(n);
  const abs = Math.abs(n);
  const digits = maxDigits ?? (abs >= 1000 ? 1 : abs >= 100 ? 2 : abs >= 10 ? 3 : 4);
  return new Intl.NumberFormat(LOCALE, { maximumFractionDigits: digits, minimumFractionDigits: 0 }).format(n);
}

/** Binary units (KiB, MiB), the same function the CLI prints with: 1_048_576 → "1.00 MiB". */
export { formatBytes } from '../../preload/units.ts';

/** Parameter counts: 260_000 → "260K", 1_100_000_000 → "1.1B". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '—';
  const abs = Math.abs(n);
  if (abs < 1000) return formatInteger(n);
  const [div, suffix] = abs >= 1e12 ? [1e12, 'T'] : abs >= 1e9 ? [1e9, 'B'] : abs >= 1e6 ? [1e6, 'M'] : [1e3, 'K'];
  const v = n / div;
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${Number(v.toFixed(digits))}${suffix}`;
}

/** Durations: 850 → "850 ms", 12_300 → "12.3 s", 125_000 → "2 min 5 s", 3_720_000 → "1 h 2 min". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
  const totalSeconds = Math.round(s);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const sec = totalSeconds % 60;
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  return sec > 0 ? `${m} min ${sec} s` : `${m} min`;
}

/** Remaining time from a job's ETA in seconds: null → "estimating…", 4.2 → "5 s left". */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return 'estimating…';
  if (seconds < 1) return 'less than a second left';
  const whole = Math.ceil(seconds);
  if (whole < 60) return `${whole} s left`;
  return `${formatDuration(whole * 1000)} left`;
}

/** A percentage from done/total, or null when the total is not known yet. */
export function progressPercent(done: number, total: number): number | null {
  if (!Number.isFinite(total) || total <= 0 || !Number.isFinite(done)) return null;
  return Math.min(100, Math.max(0, (done / total) * 100));
}

export function formatPercent(value: number, digits = 0): string {
  return `${value.toFixed(digits)} %`;
}

/** ISO time → "2025-11-22 16:45" in the user's time zone (sortable, unambiguous). */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A tensor shape: [ 'batch', 'seq', 512 ] → "[batch, seq, 512]"; unknown dimensions print as "?". */
export function formatShape(shape: readonly (number | string | null)[]): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** The last part of a path, for titles (works for / and \ separators). */
export function baseName(path: string): string {
  const parts = path.split(/[\\/]/).filter(Boolean);
  return parts.length > 0 ? parts[parts.length - 1] : path;
}
