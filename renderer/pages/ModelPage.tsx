import { Alert, Badge, Button, Code, Group, Paper, Progress, ScrollArea, SimpleGrid, Skeleton, Stack, Table, Text, Title, Tooltip } from '@mantine/core';
import { BarChart } from '@mantine/charts';
import { IconArrowLeft, IconChartBar, IconChartDots3, IconChartLine, IconStack2 } from '@tabler/icons-react';
import { useState } from 'react';
import type { GraphKind, ModelInspection, QuantizableWeight } from '../../preload/contract.ts';
import { ArchitectureMap } from '../components/ArchitectureMap.tsx';
import { ErrorAlert } from '../components/ErrorAlert.tsx';
import { StatCard } from '../components/StatCard.tsx';
import { useCall } from '../hooks/useCall.ts';
import { baseName, formatBytes, formatCount, formatInteger, formatPercent, formatShape } from '../lib/format.ts';
import { opChartRows } from '../lib/op-chart.ts';
import { href } from '../lib/route.ts';

const KIND_WORDS: Record<GraphKind, string> = {
  'decoder': 'Decoder (no KV cache)',
  'decoder-hf-cache': 'Decoder with KV cache',
  'decoder-genai-cache': 'Decoder (ORT GenAI layout)',
  'decoder-unsupported-cache': 'Decoder with a state Whittle cannot feed',
  'encoder': 'Encoder',
  'unknown': 'Unknown layout',
};

const CHART_OPS = 20;

function SummaryCards({ m }: { m: ModelInspection }) {
  const opsets = m.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ');
  return (
    <SimpleGrid cols={{ base: 2, md: 4 }} spacing="sm">
      <StatCard label="Kind" value={KIND_WORDS[m.kind]} testId="model-kind" hint={m.kind} />
      <StatCard label="Parameters" value={formatCount(m.parameters)} testId="model-parameters" hint={formatInteger(m.parameters)} />
      <StatCard label="Size on disk" value={formatBytes(m.bytesOnDisk)} testId="model-size"
        hint={m.externalDataFiles.length > 0 ? `${formatInteger(m.bytesOnDisk)} bytes, with external data` : `${formatInteger(m.bytesOnDisk)} bytes`} />
      <StatCard label="Opsets" value={<Text size="md" fw={700} component="span">{opsets || '—'}</Text>} testId="model-opsets"
        hint={`IR ${m.irVersion}${m.producer ? ` · ${m.producer}` : ''}`} />
    </SimpleGrid>
  );
}

function DecoderFacts({ decoder }: { decoder: NonNullable<ModelInspection['decoder']> }) {
  const facts: [string, number | undefined, string][] = [
    ['Layers', decoder.layers, 'decoder-layers'],
    ['KV heads', decoder.kvHeads, 'decoder-kv-heads'],
    ['Head size', decoder.headSize, 'decoder-head-size'],
    ['Vocabulary', decoder.vocabSize, 'decoder-vocab'],
  ];
  const known = facts.filter(([, v]) => v !== undefined);
  if (known.length === 0) return null;
  return (
    <Group gap="xs">
      {known.map(([label, v, id]) => (
        <Badge key={id} variant="outline" size="lg" color="gray" tt="none">
          {label}: <span data-testid={id}>{formatInteger(v!)}</span>
        </Badge>
      ))}
    </Group>
  );
}

function IoTable({ m }: { m: ModelInspection }) {
  const rows = [...m.inputs.map((t) => ({ dir: 'input', t })), ...m.outputs.map((t) => ({ dir: 'output', t }))];
  return (
    <Paper withBorder radius="md" p="md">
      <Title order={4} mb="sm">Inputs and outputs</Title>
      <ScrollArea.Autosize mah={360}>
        <Table striped data-testid="model-io-table">
          <Table.Thead><Table.Tr><Table.Th>Name</Table.Th><Table.Th>Type</Table.Th><Table.Th>Shape</Table.Th></Table.Tr></Table.Thead>
          <Table.Tbody>
            {rows.map(({ dir, t }) => (
              <Table.Tr key={`${dir}/${t.name}`} data-testid={`model-${dir}`}>
                <Table.Td><Group gap={6} wrap="nowrap"><Badge size="xs" variant="light" color={dir === 'input' ? 'blue' : 'grape'} style={{ flexShrink: 0, overflow: 'visible' }}>{dir === 'input' ? 'in' : 'out'}</Badge><Text size="sm" ff="monospace" className="wrap-anywhere">{t.name}</Text></Group></Table.Td>
                <Table.Td><Text size="sm" ff="monospace">{t.dtype}</Text></Table.Td>
                <Table.Td><Text size="sm" ff="monospace">{formatShape(t.shape)}</Text></Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </ScrollArea.Autosize>
    </Paper>
  );
}

function OpHistogram({ histogram }: { histogram: Record<string, number> }) {
  const ops = Object.entries(histogram).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const total = ops.reduce((s, [, n]) => s + n, 0);
  const data = opChartRows(histogram, CHART_OPS);
  return (
    <Paper withBorder radius="md" p="md">
      <Group justify="space-between" mb="sm">
        <Title order={4}>Operators</Title>
        <Text size="sm" c="dimmed"><span data-testid="model-node-count">{formatInteger(total)}</span> nodes, {ops.length} kinds</Text>
      </Group>
      {data.length > 0 && (
        <BarChart
          h={Math.max(160, data.length * 24 + 40)}
          data={data}
          dataKey="op"
          orientation="vertical"
          series={[{ name: 'count', label: 'Nodes', color: 'blue.6' }]}
          yAxisProps={{ width: 140, interval: 0 }}
          gridAxis="none"
          withBarValueLabel
          valueLabelProps={{ position: 'right' }}
          barChartProps={{ margin: { right: 36 } }}
          data-testid="op-histogram"
          data-bars={data.length}
        />
      )}
      <Group gap={6} mt="sm" data-testid="op-counts">
        {ops.map(([op, n]) => (
          <Badge key={op} variant="default" tt="none" fw={500} data-op={op}>{op} × {formatInteger(n)}</Badge>
        ))}
      </Group>
    </Paper>
  );
}

const DTYPE_COLORS = ['blue', 'teal', 'grape', 'orange', 'cyan', 'pink', 'lime', 'indigo'];

function BytesByDtype({ bytes }: { bytes: Record<string, number> }) {
  const rows = Object.entries(bytes).sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, n]) => s + n, 0);
  return (
    <Paper withBorder radius="md" p="md">
      <Title order={4} mb="sm">Weights by type</Title>
      {total > 0 && (
        <Progress.Root size="xl" mb="sm">
          {rows.map(([dtype, n], i) => (
            <Tooltip key={dtype} label={`${dtype}: ${formatBytes(n)}`}>
              <Progress.Section value={(n / total) * 100} color={DTYPE_COLORS[i % DTYPE_COLORS.length]} />
            </Tooltip>
          ))}
        </Progress.Root>
      )}
      <Table data-testid="bytes-by-dtype">
        <Table.Thead><Table.Tr><Table.Th>Type</Table.Th><Table.Th ta="right">Bytes</Table.Th><Table.Th ta="right">Share</Table.Th></Table.Tr></Table.Thead>
        <Table.Tbody>
          {rows.map(([dtype, n], i) => (
            <Table.Tr key={dtype} data-dtype={dtype}>
              <Table.Td><Group gap={6} wrap="nowrap"><span className="swatch" data-color={DTYPE_COLORS[i % DTYPE_COLORS.length]} />{dtype}</Group></Table.Td>
              <Table.Td ta="right" title={`${formatInteger(n)} bytes`}>{formatBytes(n)}</Table.Td>
              <Table.Td ta="right">{total > 0 ? formatPercent((n / total) * 100, 1) : '—'}</Table.Td>
            </Table.Tr>
          ))}
          {rows.length === 0 && <Table.Tr><Table.Td colSpan={3}><Text size="sm" c="dimmed">No stored weights.</Text></Table.Td></Table.Tr>}
        </Table.Tbody>
      </Table>
    </Paper>
  );
}

const WEIGHT_ROWS = 100;

function QuantizableTable({ weights }: { weights: readonly QuantizableWeight[] }) {
  const [all, setAll] = useState(false);
  const ok = weights.filter((w) => !w.skipReason).length;
  const shown = all ? weights : weights.slice(0, WEIGHT_ROWS);
  return (
    <Paper withBorder radius="md" p="md">
      <Group justify="space-between" mb="sm">
        <Title order={4}>Quantizable weights</Title>
        <Text size="sm" c="dimmed" data-testid="quantizable-summary">{formatInteger(ok)} of {formatInteger(weights.length)} can be quantized</Text>
      </Group>
      {weights.length === 0
        ? <Text size="sm" c="dimmed">No MatMul, Gemm or Gather weights found.</Text>
        : (
          <ScrollArea.Autosize mah={480}>
            <Table striped stickyHeader data-testid="quantizable-table">
              <Table.Thead>
                <Table.Tr><Table.Th>Weight</Table.Th><Table.Th>Op</Table.Th><Table.Th>Shape</Table.Th><Table.Th>Type</Table.Th><Table.Th>Status</Table.Th></Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {shown.map((w) => (
                  <Table.Tr key={`${w.name}/${w.node}`} data-testid="quantizable-row" data-skipped={w.skipReason ? 'true' : undefined}>
                    <Table.Td><Text size="sm" ff="monospace" className="wrap-anywhere" title={`node ${w.node}`}>{w.name}</Text></Table.Td>
                    <Table.Td>{w.op}</Table.Td>
                    <Table.Td><Text size="sm" ff="monospace" style={{ whiteSpace: 'nowrap' }}>{formatShape(w.shape)}</Text></Table.Td>
                    <Table.Td>{w.dtype}</Table.Td>
                    <Table.Td>{w.skipReason ? <Text size="sm" c="dimmed">skipped: {w.skipReason}</Text> : <Badge color="green" variant="light">quantizable</Badge>}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </ScrollArea.Autosize>
        )}
      {weights.length > WEIGHT_ROWS && (
        <Button variant="subtle" size="xs" mt="xs" onClick={() => setAll((a) => !a)}>
          {all ? `Show the first ${WEIGHT_ROWS}` : `Show all ${formatInteger(weights.length)}`}
        </Button>
      )}
    </Paper>
  );
}

function Inspection({ m }: { m: ModelInspection }) {
  return (
    <Stack gap="md" data-testid="model-inspection">
      <SummaryCards m={m} />
      {m.unsupported && m.unsupported.length > 0 && (
        <Alert color="orange" title="Whittle cannot run this model" data-testid="model-unsupported">
          {m.unsupported.map((line) => <Text key={line} size="sm">{line}</Text>)}
        </Alert>
      )}
      {m.decoder && <DecoderFacts decoder={m.decoder} />}
      {m.externalDataFiles.length > 0 && (
        <Text size="sm" c="dimmed">External data: {m.externalDataFiles.map((f) => <Code key={f} mr={4}>{f}</Code>)}</Text>
      )}
      <div className="two-columns">
        <IoTable m={m} />
        <BytesByDtype bytes={m.bytesByDtype} />
      </div>
      {m.architecture && <ArchitectureMap a={m.architecture} />}
      <OpHistogram histogram={m.opHistogram} />
      <QuantizableTable weights={m.quantizable} />
    </Stack>
  );
}

export function ModelPage({ path }: { path: string }) {
  const inspection = useCall('models.inspect', { path });
  return (
    <Stack gap="md">
      <Group justify="space-between" align="flex-start" wrap="nowrap">
        <Stack gap={2} style={{ minWidth: 0 }}>
          <Title order={2} className="wrap-anywhere" data-testid="model-title">{baseName(path)}</Title>
          <Text size="sm" c="dimmed" ff="monospace" className="wrap-anywhere" data-testid="model-path">{path}</Text>
        </Stack>
        <Group gap="xs" wrap="nowrap">
          <Button component="a" href={href.home()} variant="default" leftSection={<IconArrowLeft size={16} />}>Models</Button>
          <Button component="a" href={href.evaluate(path)} leftSection={<IconChartBar size={16} />} disabled={!!inspection.error} data-testid="model-evaluate">Evaluate</Button>
          <Button component="a" href={href.quantize(path)} variant="light" leftSection={<IconStack2 size={16} />} disabled={!!inspection.error} data-testid="model-quantize">Quantize…</Button>
          <Button component="a" href={href.prune(path)} variant="light" color="orange" leftSection={<IconChartDots3 size={16} />} disabled={!!inspection.error} data-testid="model-prune">Prune…</Button>
          <Button component="a" href={href.train(path)} variant="light" color="teal" leftSection={<IconChartLine size={16} />} disabled={!!inspection.error} data-testid="model-train">Train…</Button>
        </Group>
      </Group>
      {inspection.loading && (
        <Stack gap="md" data-testid="model-loading">
          <SimpleGrid cols={{ base: 2, md: 4 }}>{[0, 1, 2, 3].map((i) => <Skeleton key={i} h={84} radius="md" />)}</SimpleGrid>
          <Skeleton h={240} radius="md" />
        </Stack>
      )}
      {inspection.error && (
        <ErrorAlert error={inspection.error} testId="model-error">
          <Button variant="light" color="red" size="xs" mt="sm" onClick={() => inspection.reload()}>Try again</Button>
        </ErrorAlert>
      )}
      {inspection.data && <Inspection m={inspection.data} />}
    </Stack>
  );
}
