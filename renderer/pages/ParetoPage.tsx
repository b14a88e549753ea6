import {
  Alert, Anchor, Badge, Button, Group, NativeSelect, NumberInput, Paper, SegmentedControl, SimpleGrid, Skeleton, Stack, Switch, Table, Text, Title,
} from '@mantine/core';
import { IconArrowLeft, IconInfoCircle, IconTarget } from '@tabler/icons-react';
import { useMemo, useState } from 'react';
import {
  bestUnderBudget, chartObjectives, paretoFront, type ParetoBudget, type ParetoGoal, type ParetoPoint, type ParetoSet, type ParetoX, type ParetoY,
} from '../../preload/pareto.ts';
import { ErrorAlert } from '../components/ErrorAlert.tsx';
import { useCall } from '../hooks/useCall.ts';
import { useEvent } from '../hooks/useEvent.ts';
import { navigate } from '../hooks/useRoute.ts';
import { baseName, formatBytes, formatDecimal } from '../lib/format.ts';
import { href } from '../lib/route.ts';

const MIB = 1024 * 1024;
const ALL_EVALUATIONS = '';
/** Rows the runs table shows at most (the chart shows every point). */
const TABLE_ROWS = 200;

const X_LABEL: Record<ParetoX, string> = { bytes: 'Size on disk', bitsPerWeight: 'Bits per weight' };
const Y_LABEL: Record<ParetoY, string> = { perplexity: 'Perplexity', kl: 'Mean KL vs original' };

const formatX = (x: ParetoX, v: number | null): string => (v === null ? '—' : x === 'bytes' ? formatBytes(v) : `${formatDecimal(v, 2)} bits`);
const formatY = (y: ParetoY, v: number | null): string => (v === null ? '—' : y === 'perplexity' ? formatDecimal(v, 4) : formatDecimal(v, 5));
/** Three significant digits: enough to read an axis. */
const tickLabel = (v: number): string => String(Number(v.toPrecision(3)));
const formatSpeed = (v: number | null): string => (v === null ? '—' : `${formatDecimal(v, 0)} tok/s`);

/** Evenly spaced axis ticks over [lo, hi]. */
function ticks(lo: number, hi: number, count = 5): number[] {
  if (hi <= lo) return [lo];
  return Array.from({ length: count }, (_, i) => lo + ((hi - lo) * i) / (count - 1));
}

/** A range padded by 6 % on each side (the axis starts near the data, not at zero: a 5 % change stays visible). */
function padded(values: number[]): [number, number] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const span = hi - lo || Math.abs(hi) || 1;
  return [lo - span * 0.06, hi + span * 0.06];
}

/** Slow → fast as red → green (HSL hue 0 → 130). */
function speedColor(v: number | null, range: [number, number] | null): string {
  if (v === null || !range) return 'var(--mantine-color-gray-5)';
  const t = range[1] > range[0] ? (v - range[0]) / (range[1] - range[0]) : 1;
  return `hsl(${Math.round(130 * t)}, 70%, 48%)`;
}

interface ChartProps {
  points: ParetoPoint[];
  front: ParetoPoint[];
  best: ParetoPoint | null;
  x: ParetoX;
  y: ParetoY;
  speedAsColor: boolean;
  /** The vertical axis in log scale (every plotted value above 0). */
  logY: boolean;
}

const W = 760;
const H = 420;
const M = { left: 72, right: 20, top: 16, bottom: 48 };

/** The scatter: size (or bits) against quality, the front as a line, speed as colour; a point opens its experiment. */
function ParetoChart({ points, front, best, x, y, speedAsColor, logY }: ChartProps) {
  const plotted = points.filter((p) => p[x] !== null && p[y] !== null);
  if (plotted.length === 0) return <Text size="sm" c="dimmed" data-testid="pareto-empty">No run measured both {X_LABEL[x].toLowerCase()} and {Y_LABEL[y].toLowerCase()}.</Text>;
  const log = logY && plotted.every((p) => p[y]! > 0);
  const ty = (v: number) => (log ? Math.log10(v) : v);
  const [x0, x1] = padded(plotted.map((p) => p[x]!));
  const [y0, y1] = padded(plotted.map((p) => ty(p[y]!)));
  const sx = (v: number) => M.left + ((v - x0) / (x1 - x0)) * (W - M.left - M.right);
  const syt = (t: number) => H - M.bottom - ((t - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const sy = (v: number) => syt(ty(v));
  const speeds = plotted.map((p) => p.decodeTokensPerS).filter((v): v is number => v !== null);
  const speedRange: [number, number] | null = speedAsColor && speeds.length > 0 ? [Math.min(...speeds), Math.max(...speeds)] : null;
  const onFront = new Set(front.map((p) => key(p)));
  const frontPath = front.map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p[x]!).toFixed(1)},${sy(p[y]!).toFixed(1)}`).join(' ');

  return (
    <Stack gap={4}>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" style={{ maxWidth: W, fontSize: 11 }} role="img" aria-label={`${Y_LABEL[y]} against ${X_LABEL[x]}`} data-testid="pareto-chart">
        {ticks(x0, x1).map((t) => (
          <g key={`x${t}`}>
            <line x1={sx(t)} x2={sx(t)} y1={M.top} y2={H - M.bottom} stroke="var(--mantine-color-default-border)" strokeDasharray="3 3" />
            <text x={sx(t)} y={H - M.bottom + 16} textAnchor="middle" fill="var(--mantine-color-dimmed)">{formatX(x, t)}</text>
          </g>
        ))}
        {ticks(y0, y1).map((t) => (
          <g key={`y${t}`}>
            <line x1={M.left} x2={W - M.right} y1={syt(t)} y2={syt(t)} stroke="var(--mantine-color-default-border)" strokeDasharray="3 3" />
            <text x={M.left - 6} y={syt(t) + 4} textAnchor="end" fill="var(--mantine-color-dimmed)">{tickLabel(log ? 10 ** t : t)}</text>
          </g>
        ))}
        <text x={(M.left + W - M.right) / 2} y={H - 8} textAnchor="middle" fill="var(--mantine-color-text)">{X_LABEL[x]} (smaller is better) →</text>
        <text x={14} y={(M.top + H - M.bottom) / 2} textAnchor="middle" fill="var(--mantine-color-text)" transform={`rotate(-90 14 ${(M.top + H - M.bottom) / 2})`}>{Y_LABEL[y]}{log ? ', log scale' : ''} (lower is better)</text>
        {front.length > 1 && <path d={frontPath} fill="none" stroke="var(--mantine-color-blue-5)" strokeWidth={2} data-testid="pareto-front-line" />}
        {plotted.map((p) => {
          const cx = sx(p[x]!);
          const cy = sy(p[y]!);
          const isBest = best !== null && key(best) === key(p);
          const title = `${p.original ? 'Original' : `#${p.id} ${p.name}`} · ${p.method}\n${X_LABEL[x]} ${formatX(x, p[x])} · ${Y_LABEL[y]} ${formatY(y, p[y])} · ${formatSpeed(p.decodeTokensPerS)}`;
          return (
            <g key={key(p)} style={{ cursor: 'pointer' }} onClick={() => navigate(href.historyDetail(p.id))}
              data-testid="pareto-point" data-id={p.id} data-original={p.original} data-front={onFront.has(key(p))} data-best={isBest}>
              <title>{title}</title>
              {isBest && <circle cx={cx} cy={cy} r={13} fill="none" stroke="var(--mantine-color-yellow-5)" strokeWidth={3} />}
              {p.original
                ? <rect x={cx - 6} y={cy - 6} width={12} height={12} fill={speedColor(p.decodeTokensPerS, speedRange)} stroke="var(--mantine-color-text)" strokeWidth={1.5} />
                : <circle cx={cx} cy={cy} r={onFront.has(key(p)) ? 7 : 5.5} fill={speedColor(p.decodeTokensPerS, speedRange)} stroke={onFront.has(key(p)) ? 'var(--mantine-color-blue-7)' : 'var(--mantine-color-body)'} strokeWidth={1.5} />}
            </g>
          );
        })}
      </svg>
      <Text size="xs" c="dimmed">
        ■ the original · ● a run; ringed blue: on the Pareto front (no other run is both smaller and better){speedRange ? `; colour: ${speedRange[1] > speedRange[0] ? `decode speed from red ${formatSpeed(speedRange[0])} to green ${formatSpeed(speedRange[1])}` : `decode speed ${formatSpeed(speedRange[0])}`} (grey: not timed)` : ''}. Click a point to open it.
      </Text>
    </Stack>
  );
}

const key = (p: ParetoPoint): string => `${p.id}:${p.original ? 'o' : 'r'}`;

function numberOrNull(v: string | number): number | null {
  const n = typeof v === 'number' ? v : Number(v);
  return v === '' || !Number.isFinite(n) ? null : n;
}

function ParetoView({ set }: { set: ParetoSet }) {
  const [x, setX] = useState<ParetoX>('bytes');
  const [y, setY] = useState<ParetoY>('perplexity');
  const [speedAsColor, setSpeedAsColor] = useState(true);
  const [logY, setLogY] = useState(false);
  const [evaluation, setEvaluation] = useState<string>(set.evaluations[0]?.key ?? ALL_EVALUATIONS);
  const [maxMiB, setMaxMiB] = useState<string | number>('');
  const [minSpeed, setMinSpeed] = useState<string | number>('');
  const [maxQuality, setMaxQuality] = useState<string | number>('');
  const [goal, setGoal] = useState<ParetoGoal>('perplexity');

  // Perplexities measured differently do not compare: one evaluation at a time unless the user asks for all.
  const points = useMemo(() => (evaluation === ALL_EVALUATIONS ? set.points : set.points.filter((p) => p.evaluation === evaluation || p.evaluation === null)), [set, evaluation]);
  const front = useMemo(() => paretoFront(points, chartObjectives(x, y)), [points, x, y]);
  const budget: ParetoBudget = {
    maxBytes: numberOrNull(maxMiB) === null ? null : numberOrNull(maxMiB)! * MIB,
    minTokensPerS: numberOrNull(minSpeed),
    ...(y === 'perplexity' ? { maxPerplexity: numberOrNull(maxQuality) } : { maxKl: numberOrNull(maxQuality) }),
  };
  const budgetSet = budget.maxBytes !== null || budget.minTokensPerS !== null || numberOrNull(maxQuality) !== null;
  const best = budgetSet ? bestUnderBudget(points, budget, goal) : null;
  const unplotted = points.filter((p) => p[x] === null || p[y] === null);
  // The table: the best pick and the front first, then the rest by the vertical figure; long lists cut.
  const tableRows = useMemo(() => {
    const first = new Set([...(best ? [key(best)] : []), ...front.map(key)]);
    const rest = points.filter((p) => !first.has(key(p))).sort((a, b) => (a[y] ?? Infinity) - (b[y] ?? Infinity));
    return [...points.filter((p) => first.has(key(p))), ...rest];
  }, [points, front, best, y]);

  return (
    <Stack gap="md">
      <Paper withBorder radius="md" p="md">
        <Group gap="lg" align="flex-end" wrap="wrap">
          <Stack gap={4}>
            <Text size="xs" c="dimmed">Horizontal</Text>
            <SegmentedControl size="xs" value={x} onChange={(v) => setX(v as ParetoX)} data={[{ value: 'bytes', label: 'Size on disk' }, { value: 'bitsPerWeight', label: 'Bits per weight' }]} data-testid="pareto-x" />
          </Stack>
          <Stack gap={4}>
            <Text size="xs" c="dimmed">Vertical</Text>
            <SegmentedControl size="xs" value={y} onChange={(v) => setY(v as ParetoY)} data={[{ value: 'perplexity', label: 'Perplexity' }, { value: 'kl', label: 'KL vs original' }]} data-testid="pareto-y" />
          </Stack>
          <Switch label="Speed as colour" checked={speedAsColor} onChange={(e) => setSpeedAsColor(e.currentTarget.checked)} data-testid="pareto-speed-colour" />
          <Switch label="Log scale" checked={logY} onChange={(e) => setLogY(e.currentTarget.checked)} data-testid="pareto-log" />
          {set.evaluations.length > 1 && (
            <NativeSelect label="Evaluated on" value={evaluation} onChange={(e) => setEvaluation(e.currentTarget.value)} style={{ minWidth: 280, flex: 1 }} data-testid="pareto-evaluation"
              data={[...set.evaluations.map((e) => ({ value: e.key, label: `${baseName(e.key.split(' · ')[0])} · ${e.key.split(' · ')[1] ?? ''} (${e.ids.length})` })), { value: ALL_EVALUATIONS, label: 'All runs (not like for like)' }]} />
          )}
        </Group>
        {set.evaluations.length > 1 && (
          <Alert mt="sm" color="yellow" variant="light" icon={<IconInfoCircle size={18} />} data-testid="pareto-evaluations-note">
            These runs were evaluated {set.evaluations.length} different ways; perplexity and KL compare only within one. The chart shows one evaluation at a time.
          </Alert>
        )}
      </Paper>

      <Paper withBorder radius="md" p="md">
        <ParetoChart points={points} front={front} best={best} x={x} y={y} speedAsColor={speedAsColor} logY={logY} />
      </Paper>

      <Paper withBorder radius="md" p="md" data-testid="pareto-budget">
        <Group gap={6} mb="xs"><IconTarget size={18} /><Title order={4}>Best under a budget</Title></Group>
        <SimpleGrid cols={{ base: 1, sm: 2, md: 4 }} spacing="sm">
          <NumberInput label="Largest size (MiB)" value={maxMiB} onChange={setMaxMiB} min={0} decimalScale={3} placeholder="no limit" data-testid="pareto-budget-size" />
          <NumberInput label="Slowest decode (tok/s)" value={minSpeed} onChange={setMinSpeed} min={0} placeholder="no limit" data-testid="pareto-budget-speed" />
          <NumberInput label={`Highest ${y === 'perplexity' ? 'perplexity' : 'KL'}`} value={maxQuality} onChange={setMaxQuality} min={0} decimalScale={5} placeholder="no limit" data-testid="pareto-budget-quality" />
          <NativeSelect label="Best means" value={goal} onChange={(e) => setGoal(e.currentTarget.value as ParetoGoal)} data-testid="pareto-goal"
            data={[{ value: 'perplexity', label: 'lowest perplexity' }, { value: 'kl', label: 'lowest KL' }, { value: 'bytes', label: 'smallest' }, { value: 'speed', label: 'fastest decode' }]} />
        </SimpleGrid>
        <Group mt="sm" gap="xs">
          {!budgetSet && <Text size="sm" c="dimmed">Set a limit to pick the best run within it.</Text>}
          {budgetSet && !best && <Text size="sm" c="dimmed" data-testid="pareto-best-none">No run meets this budget (a run that did not measure a limited figure cannot meet it).</Text>}
          {best && (
            <Text size="sm" data-testid="pareto-best" data-id={best.id} data-original={best.original}>
              Best: <Anchor href={href.historyDetail(best.id)} fw={600}>{best.original ? 'the original' : `#${best.id} ${best.name}`}</Anchor> · {best.method} · {formatBytes(best.bytes)} · perplexity {formatY('perplexity', best.perplexity)} · KL {formatY('kl', best.kl)} · {formatSpeed(best.decodeTokensPerS)}
            </Text>
          )}
        </Group>
      </Paper>

      <Paper withBorder radius="md" p="md">
        <Title order={4} mb="sm">Runs</Title>
        <Table.ScrollContainer minWidth={760}>
          <Table verticalSpacing={4} data-testid="pareto-table">
            <Table.Thead>
              <Table.Tr><Table.Th>Run</Table.Th><Table.Th>Method</Table.Th><Table.Th ta="right">Size</Table.Th><Table.Th ta="right">Bits/weight</Table.Th><Table.Th ta="right">Perplexity</Table.Th><Table.Th ta="right">KL</Table.Th><Table.Th ta="right">Decode</Table.Th><Table.Th /></Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {tableRows.slice(0, TABLE_ROWS).map((p) => (
                <Table.Tr key={key(p)} data-testid="pareto-row" data-id={p.id}>
                  <Table.Td><Anchor href={href.historyDetail(p.id)} size="sm">{p.original ? 'Original' : `#${p.id} ${p.name}`}</Anchor></Table.Td>
                  <Table.Td><Text size="sm">{p.method}{p.depth > 1 ? ` (step ${p.depth} from the original)` : ''}</Text></Table.Td>
                  <Table.Td ta="right">{formatBytes(p.bytes)}</Table.Td>
                  <Table.Td ta="right">{formatX('bitsPerWeight', p.bitsPerWeight)}</Table.Td>
                  <Table.Td ta="right">{formatY('perplexity', p.perplexity)}</Table.Td>
                  <Table.Td ta="right">{formatY('kl', p.kl)}</Table.Td>
                  <Table.Td ta="right">{formatSpeed(p.decodeTokensPerS)}</Table.Td>
                  <Table.Td>
                    <Group gap={4} wrap="nowrap">
                      {front.some((f) => key(f) === key(p)) && <Badge size="xs" variant="light">front</Badge>}
                      {best && key(best) === key(p) && <Badge size="xs" color="yellow" variant="light">best</Badge>}
                    </Group>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
        {tableRows.length > TABLE_ROWS && <Text size="xs" c="dimmed" mt="xs">The first {TABLE_ROWS} of {tableRows.length} runs: the front and the best pick first, then by {Y_LABEL[y].toLowerCase()}.</Text>}
        {unplotted.length > 0 && <Text size="xs" c="dimmed" mt="xs">{unplotted.length} run(s) lack {X_LABEL[x].toLowerCase()} or {Y_LABEL[y].toLowerCase()} and are not on the chart.</Text>}
      </Paper>
    </Stack>
  );
}

export function ParetoPage({ sha256, path }: { sha256: string | null; path: string | null }) {
  const params = sha256 ? { sha256 } : path ? { path } : null;
  const set = useCall('history.pareto', params);
  useEvent('history.changed', () => set.reload({ quiet: true }));
  return (
    <Stack gap="md" data-testid="pareto-page">
      <Group justify="space-between" align="flex-start">
        <Stack gap={0} style={{ minWidth: 0 }}>
          <Title order={2}>Pareto view</Title>
          {set.data && (
            <Text size="sm" c="dimmed" className="wrap-anywhere" data-testid="pareto-model">
              {set.data.model.path ? baseName(set.data.model.path) : 'model'} · sha256 {set.data.model.sha256.slice(0, 12)}… · {set.data.points.length} point{set.data.points.length === 1 ? '' : 's'}
            </Text>
          )}
        </Stack>
        <Button component="a" href={href.history()} variant="default" leftSection={<IconArrowLeft size={16} />}>History</Button>
      </Group>
      {!params && <Text size="sm" c="dimmed">Open the Pareto view from an experiment or a comparison.</Text>}
      {set.loading && !set.data && <Skeleton h={420} />}
      {set.error && <ErrorAlert error={set.error} testId="pareto-error" />}
      {set.data && <ParetoView set={set.data} />}
    </Stack>
  );
}
