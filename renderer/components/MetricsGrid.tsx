import { SimpleGrid, Table, Text } from '@mantine/core';
import type { Metric } from '../../preload/contract.ts';
import { formatMetric, metricLabel, metricTestId, sortMetrics } from '../lib/metrics.ts';
import { StatCard } from './StatCard.tsx';

const SUBJECT_WORDS: Record<string, string> = { original: 'original', result: 'result' };

function label(m: Metric): string {
  const subject = SUBJECT_WORDS[m.subject];
  return subject ? `${metricLabel(m.name)} (${subject})` : metricLabel(m.name);
}

/** Metrics as cards (results of a job). Each value carries data-testid `metric-<name>`. */
export function MetricsGrid({ metrics }: { metrics: readonly Metric[] }) {
  return (
    <SimpleGrid type="container" cols={{ base: 2, '520px': 3, '760px': 4 }} spacing="sm" data-testid="metrics-grid">
      {sortMetrics(metrics).map((m) => (
        <StatCard key={`${m.name}/${m.subject}`} label={label(m)} value={formatMetric(m)} testId={metricTestId(m)} />
      ))}
    </SimpleGrid>
  );
}

/** Metrics as a table (history detail), with the raw value beside the formatted one. */
export function MetricsTable({ metrics }: { metrics: readonly Metric[] }) {
  if (metrics.length === 0) return <Text c="dimmed" size="sm">No metrics recorded.</Text>;
  return (
    <Table striped withTableBorder data-testid="metrics-table">
      <Table.Thead>
        <Table.Tr><Table.Th>Metric</Table.Th><Table.Th>Value</Table.Th><Table.Th>Raw</Table.Th><Table.Th>Model</Table.Th></Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {sortMetrics(metrics).map((m) => (
          <Table.Tr key={`${m.name}/${m.subject}`}>
            <Table.Td>{metricLabel(m.name)}</Table.Td>
            <Table.Td fw={600} data-testid={metricTestId(m)}>{formatMetric(m)}</Table.Td>
            <Table.Td c="dimmed" ff="monospace">{m.value}{m.unit ? ` ${m.unit}` : ''}</Table.Td>
            <Table.Td c="dimmed">{m.subject}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}
