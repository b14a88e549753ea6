import { Badge, Group, NativeSelect, Paper, SegmentedControl, SimpleGrid, Stack, Switch, Text, UnstyledButton } from '@mantine/core';
import {
  ACCURACY_HELP, ACCURACY_LEVELS, BITS, BLOCK_SIZES, FORMATS, METHODS,
  type Bits, type QuantFormat, type QuantizeForm, type QuantizeIssues,
} from '../lib/quantize-form.ts';

interface Props {
  form: QuantizeForm;
  issues: QuantizeIssues;
  onChange: (next: QuantizeForm) => void;
  disabled?: boolean;
}

/**
 * Method cards (rendered from METHODS) and the step's settings. Bits is a segmented control (radio
 * inputs, testid `bits-select`); block size, accuracy level and format are native <select>s.
 */
export function QuantizeMethodFields({ form, issues, onChange, disabled }: Props) {
  const set = <K extends keyof QuantizeForm>(key: K, value: QuantizeForm[K]) => onChange({ ...form, [key]: value });
  const format = FORMATS.find((f) => f.value === form.format) ?? FORMATS[0];
  return (
    <Stack gap="lg">
      <div>
        <Text size="sm" fw={500} mb={6}>Method</Text>
        <SimpleGrid cols={{ base: 1, md: 2 }} spacing="sm" role="radiogroup" aria-label="Method">
          {METHODS.map((m) => {
            const selected = form.method === m.id;
            return (
              <UnstyledButton key={m.id} onClick={() => set('method', m.id)} disabled={disabled} role="radio" aria-checked={selected}
                className="method-card" data-selected={selected || undefined} data-testid={`method-${m.id}`}>
                <Paper withBorder radius="md" p="md" h="100%">
                  <Group justify="space-between" mb={4} wrap="nowrap">
                    <Text fw={700}>{m.name}</Text>
                    {selected && <Badge variant="filled" size="sm">selected</Badge>}
                  </Group>
                  <Text size="sm" c="dimmed">{m.tradeoff}</Text>
                  <Text size="xs" c="dimmed" mt={6}>{m.calibration ? 'Needs calibration text.' : 'No calibration data needed.'}</Text>
                </Paper>
              </UnstyledButton>
            );
          })}
        </SimpleGrid>
      </div>

      <SimpleGrid cols={{ base: 1, md: 2 }} spacing="lg" verticalSpacing="lg">
        <div>
          <Text size="sm" fw={500} mb={4}>Bits per weight</Text>
          <SegmentedControl
            value={String(form.bits)}
            onChange={(v) => set('bits', Number(v) as Bits)}
            data={BITS.map((b) => ({ value: String(b), label: `${b}-bit` }))}
            disabled={disabled}
            data-testid="bits-select"
          />
          <Text size="xs" c="dimmed" mt={4}>
            {form.bits === 8 ? 'Close to the original; about a quarter of float32.' : form.bits === 4 ? 'About an eighth of float32 plus scales; some quality loss.' : 'Smallest, and usually far worse: for experiments.'}
          </Text>
          {issues.bits && <Text size="xs" c="red">{issues.bits}</Text>}
        </div>
        <NativeSelect
          label="Block size"
          description="Weights along K share one scale (and zero point) per block: smaller blocks are more accurate and a little larger."
          value={String(form.blockSize)}
          onChange={(e) => set('blockSize', Number(e.currentTarget.value))}
          data={BLOCK_SIZES.map((b) => ({ value: String(b), label: String(b) }))}
          error={issues.blockSize}
          disabled={disabled}
          data-testid="block-size"
        />
        <div>
          <Switch
            label="Symmetric"
            description={form.symmetric ? 'Levels centred on zero, no zero points stored.' : 'Asymmetric: a zero point per block fits skewed weights better (stores a little more).'}
            checked={form.symmetric}
            onChange={(e) => set('symmetric', e.currentTarget.checked)}
            disabled={disabled}
            data-testid="symmetric-toggle"
          />
        </div>
        <NativeSelect
          label="Format"
          description={format.help}
          value={form.format}
          onChange={(e) => set('format', e.currentTarget.value as QuantFormat)}
          data={FORMATS.map((f) => ({ value: f.value, label: f.label }))}
          error={issues.format}
          disabled={disabled}
          data-testid="format-select"
        />
        <NativeSelect
          label="Accuracy level (MatMulNBits)"
          description={form.format === 'qdq' ? `${ACCURACY_HELP} Applies to MatMulNBits only: QDQ models ignore it.` : ACCURACY_HELP}
          value={String(form.accuracyLevel)}
          onChange={(e) => set('accuracyLevel', Number(e.currentTarget.value))}
          data={ACCURACY_LEVELS.map((a) => ({ value: String(a.value), label: a.label }))}
          error={issues.accuracyLevel}
          disabled={disabled || form.format === 'qdq'}
          data-testid="accuracy-level"
        />
      </SimpleGrid>
    </Stack>
  );
}
