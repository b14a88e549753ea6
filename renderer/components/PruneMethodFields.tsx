import { Alert, Badge, Group, NativeSelect, NumberInput, Paper, SegmentedControl, SimpleGrid, Slider, Stack, Switch, Text, Textarea, UnstyledButton } from '@mantine/core';
import { IconInfoCircle } from '@tabler/icons-react';
import {
  ALLOCATIONS, CALIBRATED_IMPORTANCES, formSparsity, gainNote, IMPORTANCES, needsCalibration, NM_PATTERNS, percent, PRUNE_METHOD_CARDS, SCOPES, TARGETS,
  type Allocation, type Importance, type PruneForm, type PruneIssues, type PruneMethodCard, type Scope, type StructuredTarget,
} from '../lib/prune-form.ts';
import { CalibrationFields } from './CalibrationFields.tsx';

interface Props {
  form: PruneForm;
  issues: PruneIssues;
  onChange: (next: PruneForm) => void;
  disabled?: boolean;
}

function MethodCard({ m, selected, onSelect, disabled }: { m: PruneMethodCard; selected: boolean; onSelect: () => void; disabled?: boolean }) {
  return (
    <UnstyledButton onClick={onSelect} disabled={disabled} role="radio" aria-checked={selected}
      className="method-card" data-selected={selected || undefined} data-testid={`method-${m.id}`}>
      <Paper withBorder radius="md" p="md" h="100%">
        <Stack gap={6}>
          <Group justify="space-between" wrap="nowrap">
            <Text fw={700}>{m.name}</Text>
            <Badge size="xs" variant="light" color={m.structured ? 'teal' : 'gray'} tt="none">{m.structured ? 'smaller and faster' : 'zeros in place'}</Badge>
          </Group>
          <Text size="sm" c="dimmed">{m.tradeoff}</Text>
          <Text size="xs" data-testid={`method-calibration-${m.id}`}>
            {m.calibration ? 'Needs calibration text (a short pass of the model over it).' : m.structured ? `Calibration only for ${CALIBRATED_IMPORTANCES} importance.` : 'No calibration (OWL allocation measures on calibration text).'}
          </Text>
        </Stack>
      </Paper>
    </UnstyledButton>
  );
}

/** The method cards (read from the step descriptions) and, before anything runs, what the method will and will not gain. */
export function PruneMethodCards({ form, onChange, disabled }: Omit<Props, 'issues'>) {
  const note = gainNote(form.method);
  return (
    <Stack gap="md">
      <SimpleGrid cols={{ base: 1, md: 2 }} spacing="md" role="radiogroup" aria-label="Pruning method">
        {PRUNE_METHOD_CARDS.map((m) => (
          <MethodCard key={m.id} m={m} selected={form.method === m.id} onSelect={() => onChange({ ...form, method: m.id })} disabled={disabled} />
        ))}
      </SimpleGrid>
      <Alert variant="light" color={note.color} icon={<IconInfoCircle size={16} />} title={note.title} data-testid="prune-gain-note">{note.text}</Alert>
    </Stack>
  );
}

function UnstructuredFields({ form, issues, onChange, disabled }: Props) {
  const set = <K extends keyof PruneForm>(key: K, value: PruneForm[K]) => onChange({ ...form, [key]: value });
  const sparsity = formSparsity(form);
  const slider = typeof form.sparsity === 'number' && Number.isFinite(form.sparsity) ? form.sparsity * 100 : 50;
  const global = form.method === 'magnitude' && form.scope === 'global';
  return (
    <SimpleGrid cols={{ base: 1, md: 2 }} spacing="lg" verticalSpacing="lg">
      <div>
        <Text size="sm" fw={500} mb={4}>Pattern</Text>
        <SegmentedControl value={form.pattern} onChange={(v) => set('pattern', v)} data={NM_PATTERNS.map((p) => ({ value: p.value, label: p.label }))}
          disabled={disabled} data-testid="prune-pattern" />
        <Text size="xs" c="dimmed" mt={4}>
          {form.pattern ? `Keep ${form.pattern.split(':')[0]} of every ${form.pattern.split(':')[1]} consecutive inputs: the sparsity is fixed at ${sparsity === null ? '?' : percent(sparsity)}; hardware with N:M kernels can use it, and it loses more than the same sparsity unstructured.` : 'Any weight may be zeroed: the least loss at a given sparsity.'}
        </Text>
        {issues.pattern && <Text size="xs" c="red">{issues.pattern}</Text>}
      </div>
      <div>
        <Group justify="space-between"><Text size="sm" fw={500}>Sparsity</Text><Text size="sm" fw={600} data-testid="prune-sparsity-value">{sparsity === null ? '—' : percent(sparsity)}</Text></Group>
        <Slider value={form.pattern ? (sparsity ?? 0.5) * 100 : slider} onChange={(v) => set('sparsity', Math.round(v) / 100)} min={5} max={95} step={5}
          marks={[{ value: 25, label: '25 %' }, { value: 50, label: '50 %' }, { value: 75, label: '75 %' }]} disabled={disabled || !!form.pattern}
          label={(v) => `${v} %`} mb="lg" data-testid="prune-sparsity-slider" />
        <NumberInput size="xs" label="Exact fraction" value={form.sparsity} onChange={(v) => set('sparsity', v)} min={0} max={1} step={0.05} decimalScale={4}
          disabled={disabled || !!form.pattern} error={issues.sparsity} data-testid="prune-sparsity" />
      </div>
      {form.method === 'magnitude' && (
        <NativeSelect label="Scope" description={SCOPES.find((s) => s.value === form.scope)?.help} value={form.scope} onChange={(e) => set('scope', e.currentTarget.value as Scope)}
          data={SCOPES.map((s) => ({ value: s.value, label: s.label }))} error={issues.scope} disabled={disabled} data-testid="prune-scope" />
      )}
      <NativeSelect label="Allocation over the blocks" description={form.pattern ? 'An N:M pattern gives every weight the same sparsity.' : global ? 'Global ranking already decides each weight\'s sparsity.' : ALLOCATIONS.find((a) => a.value === form.allocation)?.help}
        value={form.pattern || global ? 'uniform' : form.allocation} onChange={(e) => set('allocation', e.currentTarget.value as Allocation)}
        data={ALLOCATIONS.map((a) => ({ value: a.value, label: a.label }))} error={issues.allocation} disabled={disabled || !!form.pattern || global} data-testid="prune-allocation" />
      {form.method !== 'magnitude' && (
        <Switch label="Sequential calibration" checked={form.sequential} onChange={(e) => set('sequential', e.currentTarget.checked)} disabled={disabled} data-testid="prune-sequential"
          description={form.sequential ? 'Block by block on the already-pruned model: each block sees the inputs it will really get.' : 'One pass over the original model for every block: faster, less accurate.'} />
      )}
      {form.method === 'sparsegpt' && (
        <Stack gap={6}>
          <Switch label="Quantize in the same pass" checked={form.quantize} onChange={(e) => set('quantize', e.currentTarget.checked)} disabled={disabled} data-testid="prune-quantize"
            description="The kept weights are GPTQ-quantized during the same sweep and written as MatMulNBits: sparse and 4-bit in one step — this one does make the file smaller." />
          {form.quantize && (
            <Group grow>
              <NativeSelect label="Bits" value={String(form.quantizeBits)} onChange={(e) => set('quantizeBits', Number(e.currentTarget.value) as 2 | 4 | 8)}
                data={['2', '4', '8']} error={issues.quantizeBits} disabled={disabled} data-testid="prune-quantize-bits" />
              <NativeSelect label="Block size" value={String(form.quantizeBlockSize)} onChange={(e) => set('quantizeBlockSize', Number(e.currentTarget.value))}
                data={['16', '32', '64', '128', '256']} error={issues.quantizeBlockSize} disabled={disabled} data-testid="prune-quantize-block" />
            </Group>
          )}
        </Stack>
      )}
    </SimpleGrid>
  );
}

function StructuredFields({ form, issues, onChange, disabled }: Props) {
  const set = <K extends keyof PruneForm>(key: K, value: PruneForm[K]) => onChange({ ...form, [key]: value });
  const unit = form.target === 'layers' ? 'blocks' : `${form.target} of every block`;
  return (
    <SimpleGrid cols={{ base: 1, md: 2 }} spacing="lg" verticalSpacing="lg">
      <NativeSelect label="Remove" description={TARGETS.find((t) => t.value === form.target)?.help} value={form.target}
        onChange={(e) => set('target', e.currentTarget.value as StructuredTarget)} data={TARGETS.map((t) => ({ value: t.value, label: t.label }))}
        error={issues.target} disabled={disabled} data-testid="prune-target" />
      <NativeSelect label="Ranked by" description={IMPORTANCES.find((i) => i.value === form.importance)?.help} value={form.importance}
        onChange={(e) => set('importance', e.currentTarget.value as Importance)} data={IMPORTANCES.map((i) => ({ value: i.value, label: i.label }))}
        error={issues.importance} disabled={disabled} data-testid="prune-importance" />
      <div>
        <Text size="sm" fw={500} mb={4}>How much</Text>
        <SegmentedControl value={form.amount} onChange={(v) => set('amount', v as PruneForm['amount'])}
          data={[{ value: 'ratio', label: 'A fraction' }, { value: 'count', label: 'A number' }]} disabled={disabled} data-testid="prune-amount" />
      </div>
      {form.amount === 'ratio'
        ? <NumberInput label={`Fraction of the ${unit}`} value={form.ratio} onChange={(v) => set('ratio', v)} min={0} max={1} step={0.05} decimalScale={4}
          error={issues.ratio} disabled={disabled} data-testid="prune-ratio" />
        : <NumberInput label={`Number of ${unit}`} value={form.count} onChange={(v) => set('count', v)} min={1} allowDecimal={false}
          error={issues.count ?? issues.ratio} disabled={disabled} data-testid="prune-count" />}
    </SimpleGrid>
  );
}

/** The Targets step: which weights (keep patterns), how much, and calibration where the settings need it. */
export function PruneTargetFields({ form, issues, onChange, disabled }: Props) {
  return (
    <Stack gap="lg">
      <Paper withBorder radius="md" p="md">
        {form.method === 'structured'
          ? <StructuredFields form={form} issues={issues} onChange={onChange} disabled={disabled} />
          : <UnstructuredFields form={form} issues={issues} onChange={onChange} disabled={disabled} />}
      </Paper>
      {needsCalibration(form) && (
        <Paper withBorder radius="md" p="md">
          <CalibrationFields form={form} issues={issues} onChange={onChange} purpose={form.method === 'structured' ? 'the importance measure' : form.method === 'magnitude' ? 'the OWL allocation' : form.method === 'wanda' ? 'Wanda' : 'SparseGPT'} disabled={disabled} />
        </Paper>
      )}
      <Textarea label="Keep" description={`Regular expressions on weight names, one per line: matching weights stay ${form.method === 'structured' ? 'whole' : 'dense'}. The embedding and the LM head are kept unless asked.`}
        placeholder={'lm_head\n^model\\.layers\\.0\\.'} value={form.keepText} onChange={(e) => onChange({ ...form, keepText: e.currentTarget.value })}
        autosize minRows={2} maxRows={6} error={issues.keepText} disabled={disabled} ff="monospace" data-testid="keep-patterns" />
    </Stack>
  );
}
