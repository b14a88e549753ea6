import { Badge, Group, Paper, ScrollArea, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import type { ReactNode } from 'react';
import { formatInteger, formatShape } from '../lib/format.ts';
import { sensitivityOf } from '../lib/quantize-form.ts';
import { SensitivityChart } from './SensitivityChart.tsx';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.filter(isRecord) : []);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const sci = (v: unknown): string => { const n = num(v); return n === null ? '—' : n === 0 ? '0' : n.toExponential(3); };

function Fact({ label, value }: { label: string; value: ReactNode }) {
  return (
    <div>
      <Text size="xs" c="dimmed" tt="uppercase" fw={600}>{label}</Text>
      <Text size="sm" fw={600}>{value}</Text>
    </div>
  );
}

function Scroll({ children }: { children: ReactNode }) {
  return <ScrollArea.Autosize mah={300} type="auto" offsetScrollbars="y">{children}</ScrollArea.Autosize>;
}

function Calibration({ step }: { step: Record<string, unknown> }) {
  const c = isRecord(step.calibration) ? step.calibration : null;
  if (!c) return null;
  const text = typeof c.text === 'string' ? c.text.split(/[\\/]/).pop() : '';
  return <Fact label="Calibration" value={`${formatInteger(Number(c.samples))} × ${formatInteger(Number(c.length))} tokens, seed ${String(c.seed)}${text ? ` (${text})` : ''}`} />;
}

/** GPTQ: the per-weight loss ‖X·W − X·Ŵ‖² GPTQ minimised (largest first), with the bits and dead inputs. */
function Gptq({ step }: { step: Record<string, unknown> }) {
  const weights = list(step.quantizedWeights).sort((a, b) => (num(b.loss) ?? 0) - (num(a.loss) ?? 0));
  return (
    <Stack gap="sm">
      <SimpleGrid cols={{ base: 2, md: 4 }}>
        <Calibration step={step} />
        <Fact label="Dampening" value={String(step.percdamp ?? '—')} />
        <Fact label="Act-order" value={step.actOrder ? 'on' : 'off'} />
        <Fact label="Layer inputs" value={`${list(step.hessians).length} Hessians`} />
      </SimpleGrid>
      <Scroll>
        <Table verticalSpacing={3} stickyHeader data-testid="gptq-losses">
          <Table.Thead><Table.Tr><Table.Th>Weight</Table.Th><Table.Th>Shape</Table.Th><Table.Th ta="right">Bits</Table.Th><Table.Th ta="right">GPTQ loss</Table.Th><Table.Th ta="right">Σ (w − ŵ)²</Table.Th><Table.Th ta="right">Dead inputs</Table.Th></Table.Tr></Table.Thead>
          <Table.Tbody>
            {weights.map((w) => (
              <Table.Tr key={String(w.name)} data-testid="gptq-loss-row">
                <Table.Td><Text size="xs" ff="monospace" className="wrap-anywhere">{String(w.name)}</Text></Table.Td>
                <Table.Td><Text size="xs" ff="monospace">{Array.isArray(w.shape) ? formatShape(w.shape as number[]) : ''}</Text></Table.Td>
                <Table.Td ta="right"><Text size="xs">{String(w.bits ?? '')}</Text></Table.Td>
                <Table.Td ta="right"><Text size="xs" fw={600}>{sci(w.loss)}</Text></Table.Td>
                <Table.Td ta="right"><Text size="xs">{sci(w.sqError)}</Text></Table.Td>
                <Table.Td ta="right"><Text size="xs">{String(w.deadInputs ?? 0)}</Text></Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Scroll>
    </Stack>
  );
}

function Rtn({ step }: { step: Record<string, unknown> }) {
  const weights = list(step.quantizedWeights);
  const other = weights.filter((w) => w.bits !== step.bits);
  return (
    <SimpleGrid cols={{ base: 2, md: 4 }}>
      <Fact label="Bits" value={`${String(step.bits)}-bit${other.length ? `, ${other.length} at other bits` : ''}`} />
      <Fact label="Block" value={String(step.blockSize)} />
      <Fact label="Format" value={String(step.format)} />
      <Fact label="Σ (w − ŵ)²" value={sci(step.sqError)} />
    </SimpleGrid>
  );
}

/** FP16: the tensors kept in float32 and why, the nodes computing in float32, warnings. */
function Fp16({ step }: { step: Record<string, unknown> }) {
  const kept = list(step.keptFp32);
  const nodes = list(step.fp32Nodes);
  const warnings = Array.isArray(step.warnings) ? step.warnings.map(String) : [];
  const byOp = new Map<string, number>();
  for (const n of nodes) byOp.set(String(n.op), (byOp.get(String(n.op)) ?? 0) + 1);
  return (
    <Stack gap="sm">
      <SimpleGrid cols={{ base: 2, md: 4 }}>
        <Fact label="To float16" value={`${formatInteger(num(step.converted) ?? 0)} tensors`} />
        <Fact label="Kept float32" value={`${kept.length} tensors`} />
        <Fact label="Float32 nodes" value={`${nodes.length} behind ${formatInteger(num(step.casts) ?? 0)} Casts`} />
        <Fact label="Inputs/outputs" value={step.keepIoTypes ? 'float32 (kept)' : 'float16'} />
      </SimpleGrid>
      {byOp.size > 0 && (
        <Group gap={6}>{[...byOp].map(([op, count]) => <Badge key={op} variant="light" color="gray" size="sm">{op} × {count}</Badge>)}</Group>
      )}
      {warnings.map((w) => <Text key={w} size="xs" c="orange">{w}</Text>)}
      <Scroll>
        <Table verticalSpacing={3} stickyHeader data-testid="fp16-kept">
          <Table.Thead><Table.Tr><Table.Th>Kept in float32</Table.Th><Table.Th>Why</Table.Th></Table.Tr></Table.Thead>
          <Table.Tbody>
            {kept.length === 0 && <Table.Tr><Table.Td colSpan={2}><Text size="xs" c="dimmed">None: every float tensor was converted.</Text></Table.Td></Table.Tr>}
            {kept.map((k, i) => (
              <Table.Tr key={`${String(k.name)}/${i}`} data-testid="fp16-kept-row">
                <Table.Td><Text size="xs" ff="monospace" className="wrap-anywhere">{String(k.name)}</Text></Table.Td>
                <Table.Td><Text size="xs" c="dimmed">{String(k.reason ?? '')}</Text></Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Scroll>
    </Stack>
  );
}

function Int8Dynamic({ step }: { step: Record<string, unknown> }) {
  return (
    <SimpleGrid cols={{ base: 2, md: 4 }}>
      <Fact label="Format" value={String(step.format)} />
      <Fact label="Weight scales" value={step.perChannel ? 'per channel' : 'per tensor'} />
      <Fact label="Activation casts" value={String(step.activationCasts ?? 0)} />
      <Fact label="Σ (w − ŵ)²" value={sci(step.sqError)} />
    </SimpleGrid>
  );
}

/** INT8 static: ranges, the nodes left in float (excluded or activation × activation), activation QDQ pairs. */
function Int8Static({ step }: { step: Record<string, unknown> }) {
  const nodes = list(step.skippedNodes);
  const activations = list(step.activations);
  return (
    <Stack gap="sm">
      <SimpleGrid cols={{ base: 2, md: 4 }}>
        <Calibration step={step} />
        <Fact label="Ranges" value={`${String(step.rangeMethod)}${step.rangeMethod === 'percentile' ? ` ${String(step.percentile)}` : ''}`} />
        <Fact label="Activations" value={`${activations.length} QDQ pairs, ${String(step.activationType)}`} />
        <Fact label="Weight scales" value={String(step.weightGranularity ?? (step.perChannel ? 'per-channel' : 'per-tensor'))} />
      </SimpleGrid>
      {typeof step.weightGranularityNote === 'string' && <Text size="xs" c="orange">{step.weightGranularityNote}</Text>}
      <Scroll>
        <Table verticalSpacing={3} stickyHeader data-testid="int8-excluded">
          <Table.Thead><Table.Tr><Table.Th>Node left in float</Table.Th><Table.Th>Op</Table.Th><Table.Th>Why</Table.Th></Table.Tr></Table.Thead>
          <Table.Tbody>
            {nodes.length === 0 && <Table.Tr><Table.Td colSpan={3}><Text size="xs" c="dimmed">None.</Text></Table.Td></Table.Tr>}
            {nodes.map((n, i) => (
              <Table.Tr key={`${String(n.name)}/${i}`} data-testid="int8-excluded-row">
                <Table.Td><Text size="xs" ff="monospace" className="wrap-anywhere">{String(n.name)}</Text></Table.Td>
                <Table.Td><Text size="xs">{String(n.op)}</Text></Table.Td>
                <Table.Td><Text size="xs" c="dimmed">{String(n.reason ?? '')}</Text></Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Scroll>
    </Stack>
  );
}

const TITLES: Record<string, string> = {
  rtn: 'RTN: the step', gptq: 'GPTQ: loss per weight', fp16: 'FP16: what stayed in float32', 'int8-dynamic': 'INT8 dynamic: the step', 'int8-static': 'INT8 static: ranges and nodes left in float',
};

/** What the method did, from the job's step details (and the sensitivity ranking when the recipe had one). */
export function MethodDetails({ details }: { details: Record<string, unknown> }) {
  const steps = list(details.steps);
  const sensitivity = sensitivityOf(details);
  const quantize = steps.find((s) => s.type === 'quantize');
  const method = quantize ? String(quantize.method) : null;
  return (
    <>
      {sensitivity && sensitivity.rows.length > 0 && (
        <Paper withBorder radius="md" p="md" data-testid="result-sensitivity">
          <Title order={4} mb="sm">Per-layer sensitivity</Title>
          <SensitivityChart rows={sensitivity.rows} baseline={sensitivity.baseline} bits={sensitivity.bits} />
        </Paper>
      )}
      {quantize && method && TITLES[method] && (
        <Paper withBorder radius="md" p="md" data-testid="method-details" data-method={method}>
          <Title order={4} mb="sm">{TITLES[method]}</Title>
          {method === 'gptq' && <Gptq step={quantize} />}
          {method === 'rtn' && <Rtn step={quantize} />}
          {method === 'fp16' && <Fp16 step={quantize} />}
          {method === 'int8-dynamic' && <Int8Dynamic step={quantize} />}
          {method === 'int8-static' && <Int8Static step={quantize} />}
        </Paper>
      )}
    </>
  );
}
