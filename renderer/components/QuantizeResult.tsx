import { ActionIcon, Alert, Anchor, Badge, Button, CopyButton, Group, Paper, SimpleGrid, Stack, Table, Text, Title, Tooltip } from '@mantine/core';
import { BarChart } from '@mantine/charts';
import { IconCheck, IconCopy, IconFolderOpen, IconHistory, IconRefresh } from '@tabler/icons-react';
import { useState, type ReactNode } from 'react';
import type { Artefact, Metric } from '../../preload/contract.ts';
import { useApi } from '../hooks/useApi.ts';
import { useToast } from '../hooks/useToast.ts';
import { formatDecimal, formatInteger } from '../lib/format.ts';
import {
  chartData, compareRows, zoomedDomain, formatCompareValue, formatRowChange, formatRunSpread, outputFolder, samplePairs, speedSetting, stepReport, stepWarnings, type CompareRow,
} from '../lib/quantize-compare.ts';
import { href } from '../lib/route.ts';
import { MethodDetails } from './MethodDetails.tsx';
import { onAsync } from '../lib/async-handler.ts';

export interface QuantizeOutcome {
  metrics: Metric[];
  artefacts: Artefact[];
  details: Record<string, unknown>;
}

interface Props {
  outcome: QuantizeOutcome;
  experimentId: number | null;
  /** One line describing the settings (e.g. "RTN 4-bit, block 32, asymmetric"). */
  settings?: string;
  onAgain: () => void;
  /** What the step did, in one sentence (a prune job's own); by default the quantize step's weights quantized and left. */
  summary?: string;
  /** The again button's label ("Quantize again", "Prune again"). */
  againLabel?: string;
}

const VERDICT_COLOR = { better: 'teal', worse: 'red', same: 'dimmed', 'within-spread': 'dimmed' } as const;

function Section({ title, children, testId, right }: { title: string; children: ReactNode; testId?: string; right?: ReactNode }) {
  return (
    <Paper withBorder radius="md" p="md" data-testid={testId}>
      <Group justify="space-between" mb="sm" wrap="nowrap">
        <Title order={4}>{title}</Title>
        {right}
      </Group>
      {children}
    </Paper>
  );
}

function CompareTable({ rows }: { rows: CompareRow[] }) {
  return (
    <Table data-testid="compare-table" verticalSpacing="xs">
      <Table.Thead>
        <Table.Tr><Table.Th>Metric</Table.Th><Table.Th ta="right">Original</Table.Th><Table.Th ta="right">Result</Table.Th><Table.Th ta="right">Change</Table.Th></Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {rows.map((r) => (
          <Table.Tr key={r.metric} data-testid={`compare-row-${r.metric}`}>
            <Table.Td>{r.label}</Table.Td>
            <Table.Td ta="right" data-testid={`compare-original-${r.metric}`} data-value={r.original?.value}>
              {r.relative && !r.original ? <Text span size="sm" c="dimmed">reference</Text> : formatCompareValue(r.original)}
              {r.spread.original && <Text size="xs" c="dimmed" data-testid={`compare-spread-original-${r.metric}`}>{formatRunSpread(r.original, r.spread.original)}</Text>}
            </Table.Td>
            <Table.Td ta="right" fw={600} data-testid={`compare-result-${r.metric}`} data-value={r.result?.value}>
              {formatCompareValue(r.result)}
              {r.spread.result && <Text size="xs" fw={400} c="dimmed" data-testid={`compare-spread-result-${r.metric}`}>{formatRunSpread(r.result, r.spread.result)}</Text>}
            </Table.Td>
            <Table.Td ta="right" data-testid={`compare-change-${r.metric}`} data-verdict={r.verdict ?? undefined}>
              <Text span size="sm" fw={r.verdict === 'better' || r.verdict === 'worse' ? 600 : undefined}
                c={r.verdict ? VERDICT_COLOR[r.verdict] : 'dimmed'}>{formatRowChange(r)}</Text>
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

const SERIES = [{ name: 'original', label: 'Original', color: 'gray.5' }, { name: 'result', label: 'Result', color: 'teal.6' }];

function CompareChart({ metrics }: { metrics: readonly Metric[] }) {
  const data = chartData(metrics);
  if (data.size.length === 0 && data.perplexity.length === 0) return <Text size="sm" c="dimmed">Nothing to chart: neither size nor perplexity was measured for both models.</Text>;
  return (
    <SimpleGrid cols={2} spacing="md">
      {[{ key: 'size', rows: data.size, fmt: (v: number) => formatDecimal(v, 2) }, { key: 'perplexity', rows: data.perplexity, fmt: (v: number) => formatDecimal(v, 3) }]
        .filter((c) => c.rows.length > 0)
        .map((c) => {
          // Perplexity on a zoomed axis: from zero a 5 % change would look flat.
          const domain = c.key === 'perplexity' ? zoomedDomain(c.rows.flatMap((r) => [r.original, r.result])) : null;
          return (
            <Stack key={c.key} gap={2}>
              <BarChart h={300} data={c.rows} dataKey="label" series={SERIES} withLegend legendProps={{ verticalAlign: 'bottom' }}
                withBarValueLabel valueFormatter={c.fmt} gridAxis="y" yAxisProps={{ width: 40, ...(domain ? { domain, allowDataOverflow: true } : {}) }}
                barProps={{ radius: 4 }} maxBarWidth={56} data-testid={`compare-chart-${c.key}`} data-axis-min={domain?.[0]} />
              {domain && <Text size="xs" c="dimmed" ta="center" data-testid="compare-chart-axis-note">The axis starts at {formatDecimal(domain[0], 3)}, not zero.</Text>}
            </Stack>
          );
        })}
    </SimpleGrid>
  );
}

function Samples({ details }: { details: Record<string, unknown> }) {
  const pairs = samplePairs(details);
  if (pairs.length === 0) return <Text size="sm" c="dimmed" data-testid="samples-none">No generations were requested.</Text>;
  return (
    <Stack gap="sm">
      {pairs.map((p, i) => (
        <div key={i} data-testid="sample-pair">
          <Text size="sm" fw={600} mb={4}>“{p.prompt}”</Text>
          <SimpleGrid cols={{ base: 1, md: 2 }} spacing="sm">
            {(['original', 'result'] as const).map((side) => (
              <Paper key={side} withBorder radius="sm" p="sm" className="generation" data-side={side}>
                <Badge size="xs" variant="light" color={side === 'original' ? 'gray' : 'teal'} mb={6}>{side}</Badge>
                <Text size="sm" className="wrap-anywhere" data-testid={`sample-${side}`}>
                  <Text span size="sm" c="dimmed">{p.prompt}</Text>{p[side] ?? <Text span c="dimmed">—</Text>}
                </Text>
              </Paper>
            ))}
          </SimpleGrid>
        </div>
      ))}
    </Stack>
  );
}

function Output({ folder }: { folder: string | null }) {
  const api = useApi();
  const toast = useToast();
  const [reason, setReason] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  if (!folder) return <Text size="sm" c="dimmed">The job reported no output folder.</Text>;

  async function reveal() {
    setBusy(true);
    try {
      const r = await api.call('files.reveal', { path: folder! });
      setReason(r.opened ? null : r.reason ?? 'The folder could not be opened.');
    } catch (e) {
      toast.error(e, 'Open output folder');
    } finally {
      setBusy(false);
    }
  }

  return (
    <Stack gap="xs">
      <Group gap="xs" wrap="nowrap" align="center">
        <Text size="sm" ff="monospace" className="wrap-anywhere" style={{ flex: 1 }} data-testid="output-path">{folder}</Text>
        <CopyButton value={folder}>
          {({ copied, copy }) => (
            <Tooltip label={copied ? 'Copied' : 'Copy the path'}>
              <ActionIcon variant="default" onClick={copy} aria-label="Copy the output path" data-testid="output-path-copy">
                {copied ? <IconCheck size={16} /> : <IconCopy size={16} />}
              </ActionIcon>
            </Tooltip>
          )}
        </CopyButton>
        <Button variant="light" leftSection={<IconFolderOpen size={16} />} onClick={onAsync(reveal)} loading={busy} data-testid="reveal-output">Open output folder</Button>
      </Group>
      {reason && <Alert variant="light" color="blue" p="xs" data-testid="reveal-reason">{reason}</Alert>}
    </Stack>
  );
}

/** The original and the quantized model side by side: metrics with changes, a chart, generations, skipped weights, the output. */
export function QuantizeResult({ outcome, experimentId, settings, onAgain, summary, againLabel = 'Quantize again' }: Props) {
  const rows = compareRows(outcome.metrics);
  const speedNote = speedSetting(outcome.details);
  const report = stepReport(outcome.details);
  const folder = outputFolder(outcome.artefacts, outcome.details);
  const warnings = stepWarnings(outcome.details);
  return (
    <Stack gap="md" data-testid="quantize-result">
      {warnings.length > 0 && (
        <Alert variant="light" color="orange" title="Check the result" data-testid="result-warnings">
          {warnings.map((w) => <Text key={w} size="sm" data-testid="result-warning">{w}</Text>)}
        </Alert>
      )}
      <Group justify="space-between" align="flex-start" wrap="nowrap">
        <Stack gap={2}>
          <Title order={3}>Original vs result</Title>
          <Text size="sm" c="dimmed" data-testid="result-summary">
            {settings ? `${settings}. ` : ''}
            {summary ?? (
              <>
                {report.quantized === null ? 'Quantized'
                  : report.method === 'fp16' ? `${formatInteger(report.quantized)} tensor${report.quantized === 1 ? '' : 's'} converted to float16`
                    : `${formatInteger(report.quantized)} weight${report.quantized === 1 ? '' : 's'} quantized`}
                {`, ${formatInteger(report.skipped.length)} left in full precision.`}
              </>
            )}
          </Text>
        </Stack>
        <Group gap="xs" wrap="nowrap">
          {experimentId !== null && (
            <Button component="a" href={href.historyDetail(experimentId)} variant="default" leftSection={<IconHistory size={16} />} data-testid="result-history-link">
              Experiment #{experimentId}
            </Button>
          )}
          <Button variant="light" leftSection={<IconRefresh size={16} />} onClick={onAgain} data-testid="quantize-again">{againLabel}</Button>
        </Group>
      </Group>

      <div className="two-columns">
        <Section title="Measurements">
          <CompareTable rows={rows} />
          {speedNote && <Text size="xs" c="dimmed" mt="xs" data-testid="compare-speed-setting">{speedNote}</Text>}
        </Section>
        <Section title="Size and perplexity" testId="compare-chart"><CompareChart metrics={outcome.metrics} /></Section>
      </div>

      <MethodDetails details={outcome.details} />

      <Section title="Generations, side by side" testId="samples-side-by-side"><Samples details={outcome.details} /></Section>

      {summary === undefined && <Section title="Weights left in full precision" testId="skipped-weights"
        right={<Text size="sm" c="dimmed">{formatInteger(report.skipped.length)}</Text>}>
        {report.skipped.length === 0
          ? <Text size="sm" c="dimmed">None: every candidate weight was quantized.</Text>
          : (
            <Table verticalSpacing={4}>
              <Table.Thead><Table.Tr><Table.Th>Weight</Table.Th><Table.Th>Why</Table.Th></Table.Tr></Table.Thead>
              <Table.Tbody>
                {report.skipped.map((s, i) => (
                  <Table.Tr key={`${s.name}/${i}`} data-testid="skipped-weight">
                    <Table.Td><Text size="sm" ff="monospace" className="wrap-anywhere">{s.name}</Text></Table.Td>
                    <Table.Td><Text size="sm" c="dimmed">{s.reason}</Text></Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
      </Section>}

      <Section title="Output" testId="quantize-output">
        <Output folder={folder} />
        {experimentId !== null && (
          <Anchor href={href.historyDetail(experimentId)} size="sm" mt="xs" display="block">The recipe, the full metrics and the log are in experiment #{experimentId} →</Anchor>
        )}
      </Section>
    </Stack>
  );
}
