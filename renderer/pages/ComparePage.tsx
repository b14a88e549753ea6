import {
  Alert, Anchor, Badge, Button, Group, Paper, Radio, ScrollArea, SimpleGrid, Skeleton, Stack, Table, Text, Title, Tooltip,
} from '@mantine/core';
import { BarChart } from '@mantine/charts';
import { IconAlertTriangle, IconArrowLeft, IconChartDots, IconInfoCircle } from '@tabler/icons-react';
import { useMemo, type ReactNode } from 'react';
import type { ComparedMetric, Comparison, MetricCell, WeightSeries } from '../../preload/comparison.ts';
import { COMPARE_MIN } from '../../preload/comparison.ts';
import { EmptyNote } from '../components/EmptyNote.tsx';
import { ErrorAlert } from '../components/ErrorAlert.tsx';
import { useCall } from '../hooks/useCall.ts';
import { useEvent } from '../hooks/useEvent.ts';
import { replaceHash } from '../hooks/useRoute.ts';
import { formatDateTime, formatDecimal } from '../lib/format.ts';
import { formatMetric, metricLabel } from '../lib/metrics.ts';
import { shortWeightName } from '../lib/quantize-form.ts';
import { href } from '../lib/route.ts';
import { ReportButton } from '../components/ReportButton.tsx';

/** One colour per compared run, in the comparison's order (at most 8 runs). */
export const RUN_COLORS = ['blue.6', 'orange.6', 'teal.6', 'grape.6', 'red.6', 'lime.7', 'cyan.6', 'pink.6'] as const;

function Section({ title, children, testId, right }: { title: string; children: ReactNode; testId?: string; right?: ReactNode }) {
  return (
    <Paper withBorder radius="md" p="md" data-testid={testId}>
      <Group justify="space-between" mb="sm"><Title order={4}>{title}</Title>{right}</Group>
      {children}
    </Paper>
  );
}

const VERDICT_COLOR: Record<string, string> = { better: 'green', worse: 'red', same: 'gray', 'within-spread': 'gray' };

function changeText(cell: MetricCell): string {
  if (cell.percent !== null) {
    const digits = Math.abs(cell.percent) < 10 ? 1 : 0;
    return `${cell.percent > 0 ? '+' : cell.percent < 0 ? '−' : '±'}${formatDecimal(Math.abs(cell.percent), digits)} %`;
  }
  return cell.difference === null ? '' : `${cell.difference > 0 ? '+' : '−'}${formatDecimal(Math.abs(cell.difference), 3)}`;
}

const REASON_WORDS: Record<string, string> = {
  model: 'another starting model', text: 'other text', tokenizer: 'another tokenizer', protocol: 'another protocol',
  speed: 'other speed settings', accuracy: 'other labelled data', generations: 'other prompts',
};

function MetricValue({ metric, cell, baseline }: { metric: ComparedMetric; cell: MetricCell; baseline: number }) {
  if (cell.value === null) return <Text size="sm" c="dimmed">—</Text>;
  const value = formatMetric({ name: metric.name, value: cell.value, unit: metric.unit });
  const showChange = cell.id !== baseline && cell.difference !== null;
  const color = cell.verdict ? VERDICT_COLOR[cell.verdict] : 'gray';
  return (
    <Stack gap={2} align="flex-end">
      <Text size="sm" fw={cell.id === baseline ? 700 : 500} style={{ whiteSpace: 'nowrap' }}>{value}</Text>
      {showChange && (
        <Group gap={4} wrap="nowrap">
          <Tooltip label={cell.verdict === 'within-spread' ? 'Inside the spread of the timed runs: no measurable difference' : cell.verdict ?? 'No direction: neither is better'} openDelay={300}>
            <Badge size="sm" variant="light" color={color} style={{ textTransform: 'none' }} data-testid="compare-delta" data-verdict={cell.verdict ?? 'none'}>
              {changeText(cell)}{cell.verdict === 'within-spread' ? ' ≈' : ''}
            </Badge>
          </Tooltip>
          {!cell.comparable && (
            <Tooltip label={`Not like for like: ${cell.reasons.map((r) => REASON_WORDS[r] ?? r).join(', ')} (see the notes above)`}>
              <Badge size="sm" variant="outline" color="yellow" data-testid="compare-not-comparable">≠</Badge>
            </Tooltip>
          )}
        </Group>
      )}
    </Stack>
  );
}

function RunHeader({ c, id }: { c: Comparison; id: number }) {
  const e = c.experiments.find((x) => x.id === id)!;
  const i = c.ids.indexOf(id);
  return (
    <Stack gap={2} align="flex-end">
      <Group gap={6} wrap="nowrap">
        <span style={{ width: 10, height: 10, borderRadius: 5, background: `var(--mantine-color-${RUN_COLORS[i].replace('.', '-')})`, display: 'inline-block' }} />
        <Anchor href={href.historyDetail(id)} size="sm" fw={600} data-testid="compare-run-name">#{id} {e.name}</Anchor>
      </Group>
      <Text size="xs" c="dimmed" data-testid="compare-run-method">{e.method}</Text>
    </Stack>
  );
}

function MetricsTable({ c }: { c: Comparison }) {
  const rows = c.metrics.filter((m) => !/_(min|max)$/.test(m.name));
  if (rows.length === 0) return <Text size="sm" c="dimmed">None of these runs measured a metric.</Text>;
  return (
    <Table.ScrollContainer minWidth={200 + 180 * c.ids.length}>
      <Table verticalSpacing="xs" data-testid="compare-metrics">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Metric</Table.Th>
            {c.ids.map((id) => <Table.Th key={id} ta="right"><RunHeader c={c} id={id} /></Table.Th>)}
          </Table.Tr>
          <Table.Tr>
            <Table.Th><Text size="xs" c="dimmed">Baseline</Text></Table.Th>
            {c.ids.map((id) => (
              <Table.Th key={id} ta="right">
                <Group justify="flex-end">
                  <Radio size="xs" checked={c.baseline === id} onChange={() => replaceHash(href.compare(c.ids, id))} aria-label={`Measure against #${id}`} data-testid="compare-baseline" data-id={id} />
                </Group>
              </Table.Th>
            ))}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((m) => (
            <Table.Tr key={m.name} data-testid="compare-metric-row" data-metric={m.name}>
              <Table.Td>
                <Text size="sm">{metricLabel(m.name)}</Text>
                {m.direction && <Text size="xs" c="dimmed">{m.direction} is better</Text>}
              </Table.Td>
              {m.cells.map((cell) => (
                <Table.Td key={cell.id} ta="right" data-id={cell.id}><MetricValue metric={m} cell={cell} baseline={c.baseline} /></Table.Td>
              ))}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

function Notes({ c }: { c: Comparison }) {
  const alike = !c.notes.some((n) => n.severity === 'warning');
  return (
    <Stack gap="xs" data-testid="compare-notes">
      {alike && <Alert color="green" variant="light" icon={<IconInfoCircle size={18} />} data-testid="compare-like-for-like">Every run was evaluated the same way: the numbers compare like for like.</Alert>}
      {c.notes.map((n, i) => (
        <Alert key={i} color={n.severity === 'warning' ? 'yellow' : 'gray'} variant="light" icon={n.severity === 'warning' ? <IconAlertTriangle size={18} /> : <IconInfoCircle size={18} />}
          data-testid="compare-note" data-aspect={n.aspect} data-severity={n.severity}>
          <Text size="sm">{n.message}</Text>
          {n.groups.length > 1 && (
            <Stack gap={0} mt={4}>
              {n.groups.map((g) => (
                <Text key={g.value} size="xs" c="dimmed" className="wrap-anywhere">{g.ids.map((id) => `#${id}`).join(', ')}: {g.value}</Text>
              ))}
            </Stack>
          )}
        </Alert>
      ))}
    </Stack>
  );
}

function RecipeDiff({ c }: { c: Comparison }) {
  if (c.recipeDiff.length === 0) return <Text size="sm" c="dimmed" data-testid="compare-recipe-same">The recipes are the same.</Text>;
  return (
    <Table.ScrollContainer minWidth={200 + 160 * c.ids.length}>
      <Table verticalSpacing={4} data-testid="compare-recipe-diff">
        <Table.Thead>
          <Table.Tr><Table.Th>Recipe field</Table.Th>{c.ids.map((id) => <Table.Th key={id}>#{id}</Table.Th>)}</Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {c.recipeDiff.map((d) => (
            <Table.Tr key={d.path} data-testid="compare-recipe-row" data-path={d.path}>
              <Table.Td><Text size="xs" ff="monospace">{d.path}</Text></Table.Td>
              {d.values.map((v, i) => (
                <Table.Td key={c.ids[i]}><Text size="xs" ff="monospace" c={v === null ? 'dimmed' : undefined} className="wrap-anywhere">{v ?? '—'}</Text></Table.Td>
              ))}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

function Generations({ c }: { c: Comparison }) {
  const withOriginal = c.generations.some((g) => g.original !== null);
  return (
    <Table.ScrollContainer minWidth={200 + 220 * (c.ids.length + (withOriginal ? 1 : 0))}>
      <Table verticalSpacing="xs" data-testid="compare-generations">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Prompt</Table.Th>
            {withOriginal && <Table.Th>Original</Table.Th>}
            {c.ids.map((id) => <Table.Th key={id}>#{id}</Table.Th>)}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {c.generations.map((g) => (
            <Table.Tr key={g.prompt} data-testid="compare-generation-row">
              <Table.Td><Text size="sm" fw={600}>{g.prompt}</Text></Table.Td>
              {withOriginal && <Table.Td><Text size="sm" c="dimmed">{g.original ?? '—'}</Text></Table.Td>}
              {g.texts.map((t, i) => <Table.Td key={c.ids[i]}><Text size="sm" c={t === null ? 'dimmed' : undefined}>{t ?? '—'}</Text></Table.Td>)}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

const formatSeriesValue = (v: number): string => (v === 0 ? '0' : Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? formatDecimal(v, 4) : v.toExponential(2));

/** One per-weight series, every run that has it as its own bar beside the others. */
function SeriesChart({ c, s }: { c: Comparison; s: WeightSeries }) {
  const data = useMemo(() => s.weights.map((w, j) => {
    const row: Record<string, string | number | null> = { weight: shortWeightName(w) };
    s.ids.forEach((id, i) => { row[`r${id}`] = s.values[i][j]; });
    return row;
  }), [s]);
  const height = Math.max(200, s.weights.length * (10 + 6 * s.ids.length) + 60);
  return (
    <Stack gap={4} data-testid="compare-series" data-kind={s.kind} data-runs={s.ids.length}>
      <Text size="sm" fw={600}>{s.label}</Text>
      <Text size="xs" c="dimmed">
        {s.ids.length < c.ids.length ? `Measured by ${s.ids.map((id) => `#${id}`).join(', ')} only. ` : ''}Lower is better.
      </Text>
      <ScrollArea.Autosize mah={520} type="auto">
        <BarChart h={height} data={data} dataKey="weight" orientation="vertical" withLegend legendProps={{ verticalAlign: 'top', height: 32 }}
          series={s.ids.map((id) => ({ name: `r${id}`, label: `#${id}`, color: RUN_COLORS[c.ids.indexOf(id)] }))}
          valueFormatter={formatSeriesValue} gridAxis="x" yAxisProps={{ width: 200, interval: 0, tick: { fontSize: 11 } }}
          barProps={{ isAnimationActive: false }} maxBarWidth={10} tooltipAnimationDuration={0} />
      </ScrollArea.Autosize>
    </Stack>
  );
}

function ComparisonView({ c }: { c: Comparison }) {
  const base = c.experiments.find((e) => e.id === c.baseline)!;
  return (
    <Stack gap="md" data-testid="compare-page" data-ids={c.ids.join(',')} data-baseline={c.baseline}>
      <SimpleGrid cols={{ base: 1, sm: 2, md: Math.min(4, c.ids.length) }} spacing="sm">
        {c.experiments.map((e, i) => (
          <Paper key={e.id} withBorder radius="md" p="sm" style={{ borderTop: `3px solid var(--mantine-color-${RUN_COLORS[i].replace('.', '-')})` }} data-testid="compare-run" data-id={e.id}>
            <Anchor href={href.historyDetail(e.id)} size="sm" fw={600} className="wrap-anywhere">#{e.id} {e.name}</Anchor>
            <Text size="xs" c="dimmed">{e.kind} · {e.method} · {formatDateTime(e.created)}</Text>
            {e.id === c.baseline && <Badge size="xs" mt={4} variant="light">baseline</Badge>}
          </Paper>
        ))}
      </SimpleGrid>
      <Section title="Comparability" testId="compare-comparability"><Notes c={c} /></Section>
      <Section title="Metrics" testId="compare-metrics-section"
        right={<Text size="xs" c="dimmed">Changes against #{base.id}; green is better, red worse, by each metric&apos;s direction.</Text>}>
        <MetricsTable c={c} />
      </Section>
      <Section title="Recipes" testId="compare-recipes"><RecipeDiff c={c} /></Section>
      {c.generations.length > 0 && <Section title="Generations" testId="compare-generations-section"><Generations c={c} /></Section>}
      {c.series.length > 0 && (
        <Section title="Per weight" testId="compare-series-section">
          <Stack gap="lg">{c.series.map((s) => <SeriesChart key={s.kind} c={c} s={s} />)}</Stack>
        </Section>
      )}
    </Stack>
  );
}

export function ComparePage({ ids, baseline }: { ids: number[]; baseline: number | null }) {
  const enough = ids.length >= COMPARE_MIN;
  const comparison = useCall('history.compare', enough ? { ids, ...(baseline !== null && ids.includes(baseline) ? { baseline } : {}) } : null);
  useEvent('history.changed', (e) => { if (e.experimentId === null || ids.includes(e.experimentId)) comparison.reload({ quiet: true }); });
  const c = comparison.data;
  const base = c?.experiments.find((e) => e.id === c.baseline);
  return (
    <Stack gap="md">
      <Group justify="space-between" align="flex-start">
        <Stack gap={0}>
          <Title order={2}>Compare {ids.length} experiments</Title>
          <Text size="sm" c="dimmed">{ids.map((id) => `#${id}`).join(' · ')}</Text>
        </Stack>
        <Group gap="xs">
          <Button component="a" href={href.history()} variant="default" leftSection={<IconArrowLeft size={16} />}>History</Button>
          {base?.modelSha256 && (
            <Button component="a" href={href.pareto({ sha256: base.modelSha256 })} variant="light" leftSection={<IconChartDots size={16} />} data-testid="compare-pareto">
              Pareto view
            </Button>
          )}
          {enough && <ReportButton ids={ids} baseline={c?.baseline ?? null} />}
        </Group>
      </Group>
      {!enough && (
        <EmptyNote icon={<IconChartDots size={24} />} title="Pick at least two experiments" testId="compare-too-few">
          Tick 2 to 8 experiments in the <Anchor href={href.history()}>history</Anchor> and choose “Compare selected”.
        </EmptyNote>
      )}
      {comparison.loading && !c && <Stack gap="md"><Skeleton h={80} /><Skeleton h={240} /></Stack>}
      {comparison.error && <ErrorAlert error={comparison.error} testId="compare-error" />}
      {c && <ComparisonView c={c} />}
    </Stack>
  );
}
