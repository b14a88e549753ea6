import { Group, NumberInput, Paper, Stack, Switch, Text } from '@mantine/core';
import { RECOVER_HELP, type RecoverFormPart } from '../lib/recover-form.ts';
import { PathInput } from './PathInput.tsx';

interface Props<F extends RecoverFormPart & { calibText?: string }> {
  form: F;
  issues: Partial<Record<'recoverText' | 'recoverSteps', string>>;
  onChange: (f: F) => void;
  /** Why this compression's output cannot be recovered (the option is then off, with the reason). */
  unavailable?: string | null;
}

/** The Recover option of the Prune and Quantize wizards: distil the compressed model from the original afterwards. */
export function RecoverFields<F extends RecoverFormPart & { calibText?: string }>({ form, issues, onChange, unavailable }: Props<F>) {
  const calib = (form.calibText ?? '').trim();
  if (unavailable) {
    return (
      <Paper withBorder radius="md" p="md" data-testid="recover">
        <Switch label="Recover after compressing" description={unavailable} checked={false} disabled data-testid="recover-toggle" />
      </Paper>
    );
  }
  return (
    <Paper withBorder radius="md" p="md" data-testid="recover">
      <Stack gap="sm">
        <Switch label="Recover after compressing" description={RECOVER_HELP} checked={form.recover}
          onChange={(e) => onChange({ ...form, recover: e.currentTarget.checked })} data-testid="recover-toggle" />
        {form.recover && (
          <Group align="flex-start" gap="md" wrap="wrap">
            <NumberInput label="Steps" value={form.recoverSteps} onChange={(v) => onChange({ ...form, recoverSteps: v })} min={1} allowDecimal={false} w={140}
              error={issues.recoverSteps} data-testid="recover-steps" />
            <div style={{ flex: 1, minWidth: 280 }}>
              <PathInput label="Training text" description={calib ? `Empty: the calibration text (${calib}).` : 'A UTF-8 text; best not the evaluation text.'}
                placeholder="/path/to/train.txt" value={form.recoverText} onChange={(v) => onChange({ ...form, recoverText: v })} purpose="text"
                error={issues.recoverText} testId="recover-text" />
            </div>
          </Group>
        )}
        {form.recover && <Text size="xs" c="dimmed">The original model is the teacher; the job compares the original with the recovered result.</Text>}
      </Stack>
    </Paper>
  );
}
