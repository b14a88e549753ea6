import { Badge, Group, Paper, ScrollArea, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { BarChart } from '@mantine/charts';
import type { ReactNode } from 'react';
import type { StepDetails } from '../../preload/methods.ts';
import { parseStepDetails } from '../../preload/methods.ts';
import { formatInteger, formatShape } from '../lib/format.ts';
import { pruneReportOf } from '../lib/prune-report.ts';
import { sensitivityOf, shortWeightName } from '../lib/quantize-form.ts';
import { PruneSparsity } from './PruneSparsity.tsx';
import { SensitivityChart } from './SensitivityChart.tsx';
import { TrainCurves } from './TrainCurves.tsx';

type Of<K extends StepDetails['key']> = Extract<StepDetails, { key: K }>;

const sci = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '—' : n === 0 ? '0' : n.toExponential(3));

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

function Calibration({ step }: { step: Of<'quantize:gptq'> | Of<'quantize:int8-static'> }) {
  const c = step.calibration;
  const text = c.text.split(/[\\/]/).pop();
  return <Fact label="Calibration" value={`${formatInteger(c.samples)} × ${formatInteger(c.length)} tokens, seed ${c.seed}${text ? ` (${text})` : ''}`} />;
}

/** At most this many weights in the loss chart (the largest losses); the table lists them all. */
const LOSS_CHART_WEIGHTS = 40;

/** GPTQ's loss per weight as horizontal bars, largest first (the table below has every number). */
function GptqLossChart({ weights }: { weights: readonly { name: string; loss?: number | undefined }[] }) {
  const shown = weights.filter((w) => w.loss !== undefined && Number.isFinite(w.loss)).slice(0, LOSS_CHART_WEIGHTS);
  if (shown.length === 0) return null;
  const data = shown.map((w) => ({ label: shortWeightName(w.name), loss: w.loss! }));
  return (
    <Stack gap={4} data-testid="gptq-loss-chart" data-rows={data.length}>
      <Text size="xs" c="dimmed">
        ‖X·W − X·Ŵ‖² on the calibration activations, largest first{weights.length > shown.length ? ` (the ${shown.length} largest of ${weights.length})` : ''}.
      </Text>
      <BarChart h={Math.max(140, data.length * 20 + 50)} data={data} dataKey="label" orientation="vertical"
        series={[{ name: 'loss', label: 'GPTQ loss', color: 'grape.6' }]} valueFormatter={(v: number) => (v === 0 ? '0' : v.toExponential(2))} gridAxis="x" withXAxis
        yAxisProps={{ width: 210, interval: 0, tick: { fontSize: 11 } }} barProps={{ radius: 2 }} maxBarWidth={14} tooltipAnimationDuration={0} />
    </Stack>
  );
}

/** GPTQ: the per-weight loss ‖X·W − X·Ŵ‖² GPTQ minimised (largest first) as a chart and a table, with the bits and dead inputs. */
function Gptq({ step }: { step: Of<'quantize:gptq'> }) {
  const weights = [...step.quantizedWeights].sort((a, b) => (b.loss ?? 0) - (a.loss ?? 0));
  return (
    <Stack gap="sm">
      <SimpleGrid cols={{ base: 2, md: 4 }}>
        <Calibration step={step} />
        <Fact label="Dampening" value={String(step.percdamp)} />
        <Fact label="Act-order" value={step.actOrder ? 'on' : 'off'} />
        <Fact label="Calibration" value={step.sequential === false ? 'one pass over the original' : 'sequential (level by level)'} />
        <Fact label="Layer inputs" value={`${step.hessians.length} Hessians`} />
      </SimpleGrid>
      <GptqLossChart weights={weights} />
      <Scroll>
        <Table verticalSpacing={3} stickyHeader data-testid="gptq-losses">
          <Table.Thead><Table.Tr><Table.Th>Weight</Table.Th><Table.Th>Shape</Table.Th><Table.Th ta="right">Bits</Table.Th><Table.Th ta="right">GPTQ loss</Table.Th><Table.Th ta="right">Σ (w − ŵ)²</Table.Th><Table.Th ta="right">Dead inputs</Table.Th></Table.Tr></Table.Thead>
          <Table.Tbody>
            {weights.map((w) => (
              <Table.Tr key={w.name} data-testid="gptq-loss-row">
                <Table.Td><Text size="xs" ff="monospace" className="wrap-anywhere">{w.name}</Text></Table.Td>
                <Table.Td><Text size="xs" ff="monospace">{formatShape(w.shape)}</Text></Table.Td>
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

function Rtn({ step }: { step: Of<'quantize:rtn'> }) {
  const other = step.quantizedWeights.filter((w) => w.bits !== step.bits);
  return (
    <SimpleGrid cols={{ base: 2, md: 4 }}>
      <Fact label="Bits" value={`${step.bits}-bit${other.length ? `, ${other.length} at other bits` : ''}`} />
      <Fact label="Block" value={String(step.blockSize)} />
      <Fact label="Format" value={step.format} />
      <Fact label="Σ (w − ŵ)²" value={sci(step.sqError)} />
    </SimpleGrid>
  );
}

/** FP16: the tensors kept in float32 and why, the nodes computing in float32, warnings. */
function Fp16({ step }: { step: Of<'quantize:fp16'> }) {
  const kept = step.keptFp32;
  const nodes = step.fp32Nodes;
  const warnings = step.warnings;
  const byOp = new Map<string, number>();
  for (const n of nodes) byOp.set(n.op, (byOp.get(n.op) ?? 0) + 1);
  return (
    <Stack gap="sm">
      <SimpleGrid cols={{ base: 2, md: 4 }}>
        <Fact label="To float16" value={`${formatInteger(step.converted)} tensors`} />
        <Fact label="Kept float32" value={`${kept.length} tensors`} />
        <Fact label="Float32 nodes" value={`${nodes.length} behind ${formatInteger(step.casts)} Casts`} />
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
              <Table.Tr key={`${k.name}/${i}`} data-testid="fp16-kept-row">
                <Table.Td><Text size="xs" ff="monospace" className="wrap-anywhere">{k.name}</Text></Table.Td>
                <Table.Td><Text size="xs" c="dimmed">{k.reason}</Text></Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Scroll>
    </Stack>
  );
}

function Int8Dynamic({ step }: { step: Of<'quantize:int8-dynamic'> }) {
  return (
    <SimpleGrid cols={{ base: 2, md: 4 }}>
      <Fact label="Format" value={step.format} />
      <Fact label="Weight scales" value={step.perChannel ? 'per channel' : 'per tensor'} />
      <Fact label="Activation casts" value={String(step.activationCasts)} />
      <Fact label="Σ (w − ŵ)²" value={sci(step.sqError)} />
    </SimpleGrid>
  );
}

/** INT8 static: ranges, the nodes left in float (excluded or activation × activation), activation QDQ pairs. */
function Int8Static({ step }: { step: Of<'quantize:int8-static'> }) {
  const nodes = step.skippedNodes;
  const activations = step.activations;
  return (
    <Stack gap="sm">
      <SimpleGrid cols={{ base: 2, md: 4 }}>
        <Calibration step={step} />
        <Fact label="Ranges" value={`${step.rangeMethod}${step.rangeMethod === 'percentile' ? ` ${String(step.percentile)}` : ''}`} />
        <Fact label="Activations" value={`${activations.length} QDQ pairs, ${step.activationType}`} />
        <Fact label="Weight scales" value={step.weightGranularity} />
      </SimpleGrid>
      {step.weightGranularityNote !== undefined && <Text size="xs" c="orange">{step.weightGranularityNote}</Text>}
      <Scroll>
        <Table verticalSpacing={3} stickyHeader data-testid="int8-excluded">
          <Table.Thead><Table.Tr><Table.Th>Node left in float</Table.Th><Table.Th>Op</Table.Th><Table.Th>Why</Table.Th></Table.Tr></Table.Thead>
          <Table.Tbody>
            {nodes.length === 0 && <Table.Tr><Table.Td colSpan={3}><Text size="xs" c="dimmed">None.</Text></Table.Td></Table.Tr>}
            {nodes.map((n, i) => (
              <Table.Tr key={`${n.name}/${i}`} data-testid="int8-excluded-row">
                <Table.Td><Text size="xs" ff="monospace" className="wrap-anywhere">{n.name}</Text></Table.Td>
                <Table.Td><Text size="xs">{n.op}</Text></Table.Td>
                <Table.Td><Text size="xs" c="dimmed">{n.reason}</Text></Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Scroll>
    </Stack>
  );
}

const TITLES: Record<Exclude<StepDetails['key'], 'sensitivity'>, string> = {
  'quantize:rtn': 'RTN: the step', 'quantize:gptq': 'GPTQ: loss per weight', 'quantize:fp16': 'FP16: what stayed in float32',
  'quantize:int8-dynamic': 'INT8 dynamic: the step', 'quantize:int8-static': 'INT8 static: ranges and nodes left in float',
  'quantize:qat': 'KD-QAT: the grid, the frozen roles and the curves',
  'prune:magnitude': 'Magnitude: sparsity per weight', 'prune:wanda': 'Wanda: sparsity per weight', 'prune:sparsegpt': 'SparseGPT: sparsity and loss per weight',
  'prune:structured': 'Structured: what was removed', train: 'Fine-tune: the loss curve', distill: 'Distillation: teacher, student and curves',
};

const pct = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '—' : `${(100 * v).toFixed(1)} %`);

/** A distillation: the teacher and the student, the KD settings, the agreement before and after, warnings, the curves. */
function Distill({ step }: { step: Of<'distill'> }) {
  const signal = step.signal.kind === 'topk' ? `top-${String(step.signal.k ?? '')} cache${step.signal.cacheBytes !== undefined ? `, ${formatInteger(step.signal.cacheBytes)} bytes` : ''}` : 'teacher logits every step';
  return (
    <Stack gap="sm" data-testid="distill-details">
      <SimpleGrid cols={{ base: 2, md: 4 }}>
        <Fact label="Teacher" value={`${step.teacher.blocks} blocks, ${formatInteger(step.teacher.parameters)} parameters`} />
        <Fact label="Student" value={`${step.student.blocks} blocks${step.student.keptBlocks ? ` (${step.student.keptBlocks.join(', ')})` : ''}, ${formatInteger(step.student.parameters)} parameters`} />
        <Fact label="Loss" value={`T = ${step.loss.temperature}, α = ${step.loss.alpha}${step.loss.reverse ? ', reverse KL' : ''}${step.loss.hidden > 0 ? `, hidden ${step.loss.hidden}` : ''}`} />
        <Fact label="Teacher signal" value={signal} />
        <Fact label="Agreement (top-1)" value={<span data-testid="distill-agreement">{`${pct(step.agreementBefore)} → ${pct(step.agreementAfter)}`}</span>} />
      </SimpleGrid>
      {step.warnings.map((w) => <Text key={w} size="xs" c="orange" data-testid="distill-warning">{w}</Text>)}
      <TrainCurves curve={step.curve} />
    </Stack>
  );
}

/** KD-QAT: the grid, the roles kept in float while training, the weights exported, the agreement with the float model, the curves. */
function Qat({ step }: { step: Of<'quantize:qat'> }) {
  return (
    <Stack gap="sm" data-testid="qat-details">
      <SimpleGrid cols={{ base: 2, md: 4 }}>
        <Fact label="Grid" value={`${step.bits}-bit, block ${step.blockSize}, ${step.symmetric ? 'symmetric' : 'asymmetric'}`} />
        <Fact label="Kept in float while training" value={<span data-testid="qat-frozen">{step.freezeRoles.length > 0 ? step.freezeRoles.join(', ') : 'none'}</span>} />
        <Fact label="MatMulNBits weights" value={<span data-testid="qat-quantized">{formatInteger(step.quantized)}</span>} />
        <Fact label="Steps" value={formatInteger(step.steps)} />
        <Fact label="Loss" value={`T = ${step.loss.temperature}, α = ${step.loss.alpha}`} />
        {(step.agreementBefore !== undefined || step.agreementAfter !== undefined) && (
          <Fact label="Agreement with the float model (top-1, held-out)" value={`${pct(step.agreementBefore)} → ${pct(step.agreementAfter)}`} />
        )}
      </SimpleGrid>
      {step.warnings.map((w) => <Text key={w} size="xs" c="orange">{w}</Text>)}
      <TrainCurves curve={step.curve} />
    </Stack>
  );
}

/** What the method did, from the job's step details (and the sensitivity ranking when the recipe had one). */
export function MethodDetails({ details }: { details: Record<string, unknown> }) {
  const sensitivity = sensitivityOf(details);
  const steps = parseStepDetails(details);
  const quantize = steps.find((s) => s.key !== 'sensitivity');
  // A recovery after the compression step: the distillation from the original, shown below it.
  const recovery = steps.find((s) => s.key === 'distill' && s !== quantize);
  const method = quantize && 'method' in quantize ? quantize.method : quantize?.key ?? null;
  const prune = pruneReportOf(details);
  return (
    <>
      {sensitivity && sensitivity.rows.length > 0 && (
        <Paper withBorder radius="md" p="md" data-testid="result-sensitivity">
          <Title order={4} mb="sm">Per-layer sensitivity</Title>
          <SensitivityChart rows={sensitivity.rows} baseline={sensitivity.baseline} bits={sensitivity.bits} />
        </Paper>
      )}
      {quantize && (
        <Paper withBorder radius="md" p="md" data-testid="method-details" data-method={method}>
          <Title order={4} mb="sm">{TITLES[quantize.key]}</Title>
          {quantize.key === 'quantize:gptq' && <Gptq step={quantize} />}
          {quantize.key === 'quantize:rtn' && <Rtn step={quantize} />}
          {quantize.key === 'quantize:fp16' && <Fp16 step={quantize} />}
          {quantize.key === 'quantize:int8-dynamic' && <Int8Dynamic step={quantize} />}
          {quantize.key === 'quantize:int8-static' && <Int8Static step={quantize} />}
          {quantize.key === 'quantize:qat' && <Qat step={quantize} />}
          {prune && <PruneSparsity report={prune} />}
          {quantize.key === 'train' && <TrainCurves curve={quantize.curve} />}
          {quantize.key === 'distill' && <Distill step={quantize} />}
        </Paper>
      )}
      {recovery?.key === 'distill' && (
        <Paper withBorder radius="md" p="md" data-testid="recovery-details">
          <Title order={4} mb="sm">Recovery: distilled from the original</Title>
          <Distill step={recovery} />
        </Paper>
      )}
    </>
  );
}
