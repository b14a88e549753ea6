import { Alert, ScrollArea, Stack, Table, Text } from '@mantine/core';
import { BarChart } from '@mantine/charts';
import { formatCount, formatInteger } from '../lib/format.ts';
import { blockChartData, removalSummary, type StructuredReport, type UnstructuredReport } from '../lib/prune-report.ts';
import { percent } from '../lib/prune-form.ts';
import { shortWeightName } from '../lib/quantize-form.ts';

const SERIES = [{ name: 'target', label: 'Asked', color: 'gray.5' }, { name: 'sparsity', label: 'Reached', color: 'teal.6' }];

/** Sparsity per block (chart and table) and per weight (table), asked beside reached. */
function Unstructured({ report }: { report: UnstructuredReport }) {
  const chart = blockChartData(report);
  const owl = report.allocation === 'owl';
  return (
    <Stack gap="md">
      <Text size="sm" data-testid="sparsity-summary" data-achieved={report.achieved}>
        {percent(report.achieved)} of {formatCount(report.prunedParams)} weights are zero (asked {report.pattern ? `${report.pattern}, ` : ''}{percent(report.asked)}
        {owl ? ', spread over the blocks by their outlier ratio (OWL)' : ''}){report.quantizeBits ? `; the kept weights quantized to ${report.quantizeBits} bits in the same pass` : ''}.
      </Text>
      {report.notes.length > 0 && (
        <Alert variant="light" color="blue" data-testid="prune-notes">{report.notes.map((n) => <Text key={n} size="sm">{n}</Text>)}</Alert>
      )}
      {report.warnings.length > 0 && (
        <Alert variant="light" color="orange" title="Check the result" data-testid="prune-warnings">{report.warnings.map((n) => <Text key={n} size="sm">{n}</Text>)}</Alert>
      )}
      {chart.length > 0 && (
        <BarChart h={240} data={chart} dataKey="label" series={SERIES} withLegend legendProps={{ verticalAlign: 'bottom' }} unit=" %"
          yAxisProps={{ domain: [0, 100], width: 48 }} gridAxis="y" barProps={{ radius: 3 }} maxBarWidth={28} data-testid="sparsity-chart" />
      )}
      <Table verticalSpacing={4} data-testid="sparsity-blocks">
        <Table.Thead>
          <Table.Tr><Table.Th>Block</Table.Th><Table.Th ta="right">Weights</Table.Th><Table.Th ta="right">Asked</Table.Th><Table.Th ta="right">Reached</Table.Th>{owl && <Table.Th ta="right">Outlier ratio</Table.Th>}</Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {report.blocks.map((b) => (
            <Table.Tr key={b.name} data-testid="sparsity-block" data-block={b.block ?? ''} data-sparsity={b.sparsity}>
              <Table.Td>{b.name}</Table.Td>
              <Table.Td ta="right">{formatCount(b.params)}</Table.Td>
              <Table.Td ta="right">{percent(b.target)}</Table.Td>
              <Table.Td ta="right" fw={600}>{percent(b.sparsity)}</Table.Td>
              {owl && <Table.Td ta="right">{b.outlierRatio === null ? '—' : percent(b.outlierRatio)}</Table.Td>}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <ScrollArea.Autosize mah={420}>
        <Table verticalSpacing={4} data-testid="sparsity-table">
          <Table.Thead>
            <Table.Tr><Table.Th>Weight</Table.Th><Table.Th>Shape</Table.Th><Table.Th ta="right">Zeros</Table.Th><Table.Th ta="right">Asked</Table.Th><Table.Th ta="right">Reached</Table.Th></Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {report.weights.map((w) => (
              <Table.Tr key={w.name} data-testid="sparsity-row" data-name={w.name} data-sparsity={w.sparsity}>
                <Table.Td><Text size="sm" ff="monospace" className="wrap-anywhere" title={w.name}>{shortWeightName(w.name)}</Text></Table.Td>
                <Table.Td><Text size="sm" c="dimmed">{w.shape.join(' × ')}</Text></Table.Td>
                <Table.Td ta="right">{formatInteger(w.zeros)} / {formatInteger(w.params)}</Table.Td>
                <Table.Td ta="right">{percent(w.target)}</Table.Td>
                <Table.Td ta="right" fw={600}>{percent(w.sparsity)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </ScrollArea.Autosize>
      {report.skipped.length > 0 && (
        <Stack gap={4} data-testid="prune-skipped">
          <Text size="sm" fw={600}>Left dense ({formatInteger(report.skipped.length)})</Text>
          {report.skipped.map((s) => <Text key={s.name} size="sm"><Text span ff="monospace" size="sm">{s.name}</Text> <Text span c="dimmed" size="sm">— {s.reason}</Text></Text>)}
        </Stack>
      )}
    </Stack>
  );
}

/** What was removed from each block, and the parameters before and after. */
function Structured({ report }: { report: StructuredReport }) {
  const removed = report.paramsBefore - report.paramsAfter;
  return (
    <Stack gap="md">
      <Text size="sm" data-testid="sparsity-summary" data-removed={removed}>
        {removalSummary(report)} Parameters {formatCount(report.paramsBefore)} → {formatCount(report.paramsAfter)} ({report.paramsBefore > 0 ? percent(removed / report.paramsBefore) : '—'} removed).
      </Text>
      {report.warnings.length > 0 && (
        <Alert variant="light" color="orange" title="Check the result" data-testid="prune-warnings">{report.warnings.map((n) => <Text key={n} size="sm">{n}</Text>)}</Alert>
      )}
      <Table verticalSpacing={4} data-testid="sparsity-table">
        <Table.Thead>
          <Table.Tr><Table.Th>Block</Table.Th><Table.Th>Removed</Table.Th><Table.Th ta="right">Kept</Table.Th><Table.Th ta="right">Parameters removed</Table.Th></Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {report.removals.map((r, i) => (
            <Table.Tr key={`${r.block}/${i}`} data-testid="sparsity-row">
              <Table.Td>{r.block === null ? '—' : r.block}</Table.Td>
              <Table.Td><Text size="sm" ff="monospace">{r.removed.length === 0 ? 'nothing' : r.removed.join(', ')}</Text></Table.Td>
              <Table.Td ta="right">{formatInteger(r.kept)}</Table.Td>
              <Table.Td ta="right">{formatCount(r.params)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

/** The prune step's report (comparison page, history): the sparsity table and chart, or the structured removals. */
export function PruneSparsity({ report }: { report: UnstructuredReport | StructuredReport }) {
  return (
    <div data-testid="prune-sparsity" data-kind={report.kind}>
      {report.kind === 'structured' ? <Structured report={report} /> : <Unstructured report={report} />}
    </div>
  );
}
