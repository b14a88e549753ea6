import {
  Alert, Badge, Button, Group, Loader, NativeSelect, NumberInput, Paper, SegmentedControl, SimpleGrid, Stack, Switch, TagsInput, Text, Textarea,
  Title, UnstyledButton,
} from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { IconInfoCircle } from '@tabler/icons-react';
import { DEFAULT_FP16_BLOCK_OPS } from '../../preload/recipe.ts';
import { useCall } from '../hooks/useCall.ts';
import { formatBytes, formatInteger } from '../lib/format.ts';
import { formatRatio } from '../lib/quantize-compare.ts';
import {
  ACCURACY_HELP, ACCURACY_LEVELS, ACTIVATION_TYPES, ASSUMED_FLOPS, BITS, BLOCK_SIZES, calibrationSeconds, expectedQuality, FORMATS, INT8_FORMATS,
  METHODS, methodOf, planStep, RANGE_METHODS, roughDuration, RTN_VS_GPTQ,
  type ActivationType, type Bits, type Int8Format, type MethodDescriptor, type QuantFormat, type QuantizeForm, type QuantizeIssues, type RangeMethod,
} from '../lib/quantize-form.ts';
import { CalibrationFields } from './CalibrationFields.tsx';
import { PathInput } from './PathInput.tsx';

interface Props {
  form: QuantizeForm;
  issues: QuantizeIssues;
  onChange: (next: QuantizeForm) => void;
  disabled?: boolean;
}

/** What a card says about calibration: none, or N × L tokens and a rough time from the model's size. */
function calibrationLine(m: MethodDescriptor, form: QuantizeForm, parameters: number | undefined): string {
  if (!m.calibration) return 'No calibration data needed.';
  const n = Number(form.calibSamples), l = Number(form.calibLength);
  if (!(n > 0 && l > 0)) return 'Needs calibration text.';
  const tokens = n * l;
  const time = parameters ? `, ${roughDuration(calibrationSeconds(parameters, tokens))} (estimate)` : '';
  return `Needs ${formatInteger(n)} × ${formatInteger(l)} = ${formatInteger(tokens)} tokens of calibration${time}.`;
}

/** One method card: the trade-off, and estimates of size (from quantize.plan), calibration time and quality. */
function MethodCard({ m, form, selected, disabled, onSelect }: { m: MethodDescriptor; form: QuantizeForm; selected: boolean; disabled?: boolean; onSelect: () => void }) {
  const step = planStep(form, m.id);
  const key = form.modelPath.trim() && step ? JSON.stringify({ path: form.modelPath.trim(), step }) : null;
  const [debounced] = useDebouncedValue(key, 300);
  const plan = useCall('quantize.plan', debounced ? (JSON.parse(debounced) as { path: string; step: NonNullable<typeof step> }) : null);
  const quality = expectedQuality(m.id, form.bits);
  const p = plan.data;
  return (
    <UnstyledButton onClick={onSelect} disabled={disabled} role="radio" aria-checked={selected}
      className="method-card" data-selected={selected || undefined} data-testid={`method-${m.id}`}>
      <Paper withBorder radius="md" p="md" h="100%">
        <Stack gap={6} h="100%">
          <Group justify="space-between" wrap="nowrap" align="flex-start">
            <Text fw={700}>{m.name}</Text>
            {selected && <Badge variant="filled" size="sm">selected</Badge>}
          </Group>
          <Text size="sm" c="dimmed">{m.tradeoff}</Text>
          <Stack gap={2} mt="auto" pt={4}>
            <Group gap={6} wrap="nowrap" data-testid={`method-estimate-${m.id}`} data-after={p?.bytesAfter} data-before={p?.bytesBefore}>
              <Text size="xs" c="dimmed" w={62}>Size</Text>
              {p ? (
                <Text size="xs" fw={600}>{formatBytes(p.bytesBefore)} → {formatBytes(p.bytesAfter)} <Text span size="xs" c="dimmed" fw={400}>({formatRatio(p.bytesBefore, p.bytesAfter)})</Text></Text>
              ) : plan.error ? <Text size="xs" c="red">{plan.error.message}</Text> : key ? <Loader size={10} /> : <Text size="xs" c="dimmed">—</Text>}
            </Group>
            <Group gap={6} wrap="nowrap" align="flex-start">
              <Text size="xs" c="dimmed" w={62} style={{ flexShrink: 0 }}>Calibration</Text>
              <Text size="xs" data-testid={`method-calibration-${m.id}`}>{calibrationLine(m, form, p?.parameters)}</Text>
            </Group>
            <Group gap={6} wrap="nowrap">
              <Text size="xs" c="dimmed" w={62}>Quality</Text>
              <Badge size="xs" variant="light" color={quality.color} tt="none" data-testid={`method-quality-${m.id}`}>{quality.label}</Badge>
            </Group>
          </Stack>
        </Stack>
      </Paper>
    </UnstyledButton>
  );
}

function WeightOnlyFields({ form, issues, onChange, disabled }: Props) {
  const set = <K extends keyof QuantizeForm>(key: K, value: QuantizeForm[K]) => onChange({ ...form, [key]: value });
  const format = FORMATS.find((f) => f.value === form.format) ?? FORMATS[0];
  return (
    <SimpleGrid cols={{ base: 1, md: 2 }} spacing="lg" verticalSpacing="lg">
      <div>
        <Text size="sm" fw={500} mb={4}>Bits per weight</Text>
        <SegmentedControl value={String(form.bits)} onChange={(v) => set('bits', Number(v) as Bits)}
          data={BITS.map((b) => ({ value: String(b), label: `${b}-bit` }))} disabled={disabled} data-testid="bits-select" />
        <Text size="xs" c="dimmed" mt={4}>
          {form.bits === 8 ? 'Close to the original; about a quarter of float32.' : form.bits === 4 ? 'About an eighth of float32 plus scales; some quality loss.' : 'Smallest, and usually far worse: for experiments.'}
        </Text>
        {issues.bits && <Text size="xs" c="red">{issues.bits}</Text>}
      </div>
      <NativeSelect label="Block size" description="Weights along K share one scale (and zero point) per block: smaller blocks are more accurate and a little larger."
        value={String(form.blockSize)} onChange={(e) => set('blockSize', Number(e.currentTarget.value))}
        data={BLOCK_SIZES.map((b) => ({ value: String(b), label: String(b) }))} error={issues.blockSize} disabled={disabled} data-testid="block-size" />
      <Switch label="Symmetric" checked={form.symmetric} onChange={(e) => set('symmetric', e.currentTarget.checked)} disabled={disabled} data-testid="symmetric-toggle"
        description={form.symmetric ? 'Levels centred on zero, no zero points stored.' : 'Asymmetric: a zero point per block fits skewed weights better (stores a little more).'} />
      <NativeSelect label="Format" description={format.help} value={form.format} onChange={(e) => set('format', e.currentTarget.value as QuantFormat)}
        data={FORMATS.map((f) => ({ value: f.value, label: f.label }))} error={issues.format} disabled={disabled} data-testid="format-select" />
      <NativeSelect label="Accuracy level (MatMulNBits)" description={form.format === 'qdq' ? `${ACCURACY_HELP} Applies to MatMulNBits only: QDQ models ignore it.` : ACCURACY_HELP}
        value={String(form.accuracyLevel)} onChange={(e) => set('accuracyLevel', Number(e.currentTarget.value))}
        data={ACCURACY_LEVELS.map((a) => ({ value: String(a.value), label: a.label }))} error={issues.accuracyLevel}
        disabled={disabled || form.format === 'qdq'} data-testid="accuracy-level" />
      {form.method === 'gptq' && (
        <>
          <Switch label="Act-order" checked={form.actOrder} onChange={(e) => set('actOrder', e.currentTarget.checked)} disabled={disabled} data-testid="act-order-toggle"
            description="Quantize the input rows whose activations are largest first, while the most error can still be spread over the rest (static groups: no g_idx, the same fast kernel)." />
          <Switch label="Sequential calibration" checked={form.sequential} onChange={(e) => set('sequential', e.currentTarget.checked)} disabled={disabled} data-testid="sequential-toggle"
            description="Quantize level by level (q/k/v, o, gate/up, down, block after block), each calibrated on what the already-quantized levels produce, so later weights correct earlier errors. Off: one faster pass over the original model." />
          <NumberInput label="Dampening (percdamp)" description="Added to the Hessian's diagonal as a fraction of its mean; raise it if GPTQ reports an unstable Cholesky."
            value={form.percdamp} onChange={(v) => set('percdamp', v)} min={0} max={1} step={0.005} decimalScale={4} error={issues.percdamp} disabled={disabled} data-testid="percdamp" />
          <NumberInput label="Column block" description="Rows swept together before the lazy batch update of the rest; changes speed, not the result's size."
            value={form.columnBlock} onChange={(v) => set('columnBlock', v)} min={1} max={4096} allowDecimal={false} error={issues.columnBlock} disabled={disabled} data-testid="column-block" />
        </>
      )}
    </SimpleGrid>
  );
}

function Fp16Fields({ form, issues, onChange, disabled }: Props) {
  const set = <K extends keyof QuantizeForm>(key: K, value: QuantizeForm[K]) => onChange({ ...form, [key]: value });
  const isDefault = form.blockOps.length === DEFAULT_FP16_BLOCK_OPS.length && form.blockOps.every((op, i) => op === DEFAULT_FP16_BLOCK_OPS[i]);
  return (
    <Stack gap="lg">
      <Switch label="Keep float32 inputs and outputs" checked={form.keepIoTypes} onChange={(e) => set('keepIoTypes', e.currentTarget.checked)}
        disabled={disabled} data-testid="keep-io-types-toggle"
        description={form.keepIoTypes ? 'Callers keep feeding and reading float32: Casts are added at the graph boundary.' : 'Graph inputs and outputs become float16: callers must convert.'} />
      <div>
        <TagsInput label="Ops kept in float32" description="Norms, reductions and Softmax overflow or lose precision in float16; these run in float32 behind Casts. Type an op type and press Enter to add one."
          value={form.blockOps} onChange={(v) => set('blockOps', v)} clearable disabled={disabled} error={issues.blockOps} data-testid="block-ops" splitChars={[',', ' ']} />
        {!isDefault && (
          <Button variant="subtle" size="compact-xs" mt={4} onClick={() => set('blockOps', [...DEFAULT_FP16_BLOCK_OPS])} data-testid="block-ops-reset">Reset to the default list</Button>
        )}
      </div>
      <Text size="xs" c="dimmed">Large constants are never clamped to fit float16: a tensor with values beyond ±65,504 stays float32 and is listed in the result. Keep patterns (Weights step) match node or initializer names.</Text>
    </Stack>
  );
}

function Int8Fields({ form, issues, onChange, disabled }: Props) {
  const set = <K extends keyof QuantizeForm>(key: K, value: QuantizeForm[K]) => onChange({ ...form, [key]: value });
  const range = RANGE_METHODS.find((r) => r.value === form.rangeMethod) ?? RANGE_METHODS[0];
  const int8Format = INT8_FORMATS.find((f) => f.value === form.int8Format) ?? INT8_FORMATS[0];
  return (
    <SimpleGrid cols={{ base: 1, md: 2 }} spacing="lg" verticalSpacing="lg">
      {form.method === 'int8-dynamic' && (
        <NativeSelect label="Format" description={int8Format.help} value={form.int8Format} onChange={(e) => set('int8Format', e.currentTarget.value as Int8Format)}
          data={INT8_FORMATS.map((f) => ({ value: f.value, label: f.label }))} disabled={disabled} data-testid="int8-format" />
      )}
      <Switch label="Per-channel weight scales" checked={form.perChannel} onChange={(e) => set('perChannel', e.currentTarget.checked)} disabled={disabled} data-testid="per-channel-toggle"
        description={form.perChannel ? 'One scale per output channel: fits each column\'s range (recommended).' : 'One scale for the whole weight: a little smaller, usually less accurate.'} />
      {form.method === 'int8-static' && (
        <>
          <NativeSelect label="Activation range" description={range.help} value={form.rangeMethod} onChange={(e) => set('rangeMethod', e.currentTarget.value as RangeMethod)}
            data={RANGE_METHODS.map((r) => ({ value: r.value, label: r.label }))} disabled={disabled} data-testid="range-method" />
          {form.rangeMethod === 'percentile' && (
            <NumberInput label="Percentile" description="Of |activation| kept inside the range; 99.999 clips one value in 100,000." value={form.percentile}
              onChange={(v) => set('percentile', v)} min={90} max={100} step={0.001} decimalScale={4} error={issues.percentile} disabled={disabled} data-testid="percentile" />
          )}
          <NativeSelect label="Activation type" description="uint8 with a zero point fits one-sided activations; int8 keeps zero in the middle."
            value={form.activationType} onChange={(e) => set('activationType', e.currentTarget.value as ActivationType)}
            data={ACTIVATION_TYPES.map((a) => ({ value: a.value, label: a.label }))} disabled={disabled} data-testid="activation-type" />
          <Textarea label="Nodes left in float" description="Regular expressions on node names, one per line: matching MatMul/Gemm nodes are not quantized."
            placeholder={'lm_head\n^/model/layers\\.0/'} value={form.excludeText} onChange={(e) => set('excludeText', e.currentTarget.value)}
            autosize minRows={2} maxRows={6} spellCheck={false} classNames={{ input: 'mono-input' }} error={issues.excludeText} disabled={disabled} data-testid="exclude-patterns" />
        </>
      )}
    </SimpleGrid>
  );
}

/** KD-QAT: the grid (4 or 8 bits, block size, symmetric), ov-freeze, the training text and schedule. */
function QatFields({ form, issues, onChange, disabled }: Props) {
  const set = <K extends keyof QuantizeForm>(key: K, value: QuantizeForm[K]) => onChange({ ...form, [key]: value });
  return (
    <SimpleGrid cols={{ base: 1, md: 2 }} spacing="lg" verticalSpacing="lg" data-testid="qat-fields">
      <div>
        <Text size="sm" fw={500} mb={4}>Bits per weight</Text>
        <SegmentedControl value={String(form.bits === 2 ? 4 : form.bits)} onChange={(v) => set('bits', Number(v) as Bits)}
          data={[4, 8].map((b) => ({ value: String(b), label: `${b}-bit` }))} disabled={disabled} data-testid="qat-bits" />
        <Text size="xs" c="dimmed" mt={4}>KD-QAT exports MatMulNBits at 4 or 8 bits.</Text>
        {issues.bits && <Text size="xs" c="red">{issues.bits}</Text>}
      </div>
      <NativeSelect label="Block size" description="Weights along K share one scale (and zero point) per block, in training and in the export."
        value={String(form.blockSize)} onChange={(e) => set('blockSize', Number(e.currentTarget.value))}
        data={BLOCK_SIZES.map((b) => ({ value: String(b), label: String(b) }))} error={issues.blockSize} disabled={disabled} data-testid="qat-block-size" />
      <Switch label="Symmetric" checked={form.symmetric} onChange={(e) => set('symmetric', e.currentTarget.checked)} disabled={disabled} data-testid="qat-symmetric"
        description={form.symmetric ? 'Levels centred on zero, no zero points stored.' : 'Asymmetric: a zero point per block.'} />
      <Switch label="ov-freeze" checked={form.qatFreezeOv} onChange={(e) => set('qatFreezeOv', e.currentTarget.checked)} disabled={disabled} data-testid="qat-ov-freeze"
        description="The attention's o and v projections keep their float values while training and are quantized only at export (arXiv 2403.18159)." />
      <PathInput label="Training text" description="A UTF-8 text (paragraphs separated by blank lines) the model learns to match its float outputs on; not the evaluation text."
        placeholder="/path/to/train.txt" value={form.qatText} onChange={(v) => set('qatText', v)} purpose="text" error={issues.qatText} testId="qat-text" />
      <NumberInput label="Steps" description="Optimizer steps (batches of 8 sequences of 64 tokens)." value={form.qatSteps} onChange={(v) => set('qatSteps', v)}
        min={1} allowDecimal={false} error={issues.qatSteps} disabled={disabled} data-testid="qat-steps" />
      <NumberInput label="Learning rate" description="Peak learning rate after the warmup; cosine decay to a tenth." value={form.qatLr} onChange={(v) => set('qatLr', v)}
        min={0} step={1e-5} decimalScale={6} error={issues.qatLr} disabled={disabled} data-testid="qat-lr" />
    </SimpleGrid>
  );
}

/** The form with another method chosen; KD-QAT starts from the calibration text when no training text is set (the sample's is clear of its evaluation text). */
function selectMethod(form: QuantizeForm, id: MethodDescriptor['id']): QuantizeForm {
  return id === 'qat' && !form.qatText.trim() && form.calibText.trim() ? { ...form, method: id, qatText: form.calibText } : { ...form, method: id };
}

/**
 * Method cards (rendered from METHODS, each with its own size estimate from quantize.plan) and the chosen
 * method's settings; calibration fields for the methods that calibrate.
 */
export function QuantizeMethodFields({ form, issues, onChange, disabled }: Props) {
  const method = methodOf(form.method);
  return (
    <Stack gap="lg">
      <div>
        <Text size="sm" fw={500} mb={6}>Method</Text>
        <SimpleGrid cols={{ base: 1, sm: 2, lg: 3 }} spacing="sm" role="radiogroup" aria-label="Method">
          {METHODS.map((m) => (
            <MethodCard key={m.id} m={m} form={form} selected={form.method === m.id} disabled={disabled} onSelect={() => onChange(selectMethod(form, m.id))} />
          ))}
        </SimpleGrid>
        <Text size="xs" c="dimmed" mt={6}>
          Sizes come from the model's shapes; calibration times assume about {ASSUMED_FLOPS / 1e9} GFLOP/s on the CPU and are a rough guide; quality is what the method usually gives — the Result step measures it.
        </Text>
      </div>

      <Paper withBorder radius="md" p="md">
        <Stack gap="md">
          <Title order={4}>{method.name}: settings</Title>
          {method.weightOnly && <WeightOnlyFields form={form} issues={issues} onChange={onChange} disabled={disabled} />}
          {form.method === 'qat' && <QatFields form={form} issues={issues} onChange={onChange} disabled={disabled} />}
          {form.method === 'fp16' && <Fp16Fields form={form} issues={issues} onChange={onChange} disabled={disabled} />}
          {(form.method === 'int8-dynamic' || form.method === 'int8-static') && <Int8Fields form={form} issues={issues} onChange={onChange} disabled={disabled} />}
        </Stack>
      </Paper>

      {method.calibration && (
        <Paper withBorder radius="md" p="md" data-testid="calibration-panel">
          <Stack gap="sm">
            <Title order={4}>Calibration data</Title>
            {form.method === 'gptq' && (
              <Alert variant="light" color="blue" p="xs" icon={<IconInfoCircle size={16} />} data-testid="rtn-vs-gptq">{RTN_VS_GPTQ}</Alert>
            )}
            <CalibrationFields form={form} issues={issues} onChange={onChange} purpose={form.method === 'gptq' ? 'GPTQ' : 'INT8 static'} disabled={disabled} />
          </Stack>
        </Paper>
      )}
    </Stack>
  );
}
