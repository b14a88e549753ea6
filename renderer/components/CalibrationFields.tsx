import { Alert, Group, NumberInput, Stack, Text } from '@mantine/core';
import { IconAlertTriangle } from '@tabler/icons-react';
import type { Issues } from '../lib/form-issues.ts';
import type { CalibrationFormPart } from '../lib/recipe-form.ts';
import { PathInput } from './PathInput.tsx';

interface Props<F extends CalibrationFormPart> {
  form: F;
  issues: Issues<'calibText' | 'calibSamples' | 'calibLength' | 'calibSeed'>;
  onChange: (next: F) => void;
  /** What uses the calibration, for the description ("GPTQ", "the sensitivity analysis"). */
  purpose: string;
  /** Show N (samples): not for the sensitivity analysis of RTN, which scores its own number of sequences. */
  showSamples?: boolean;
  disabled?: boolean;
}

/** Same file as the evaluation text (compared as typed, without surrounding spaces). */
export function calibrationOverlapsEvaluation(form: CalibrationFormPart): boolean {
  const calib = form.calibText.trim();
  return form.evaluate && calib !== '' && calib === form.textPath.trim();
}

/**
 * The calibration text and how it is sampled: N sequences of L tokens drawn with a seed. Warns when the
 * calibration text is the evaluation text (the comparison would flatter the result).
 */
export function CalibrationFields<F extends CalibrationFormPart>({ form, issues, onChange, purpose, showSamples = true, disabled }: Props<F>) {
  const set = <K extends keyof CalibrationFormPart>(key: K, value: F[K]) => onChange({ ...form, [key]: value });
  const samples = Number(form.calibSamples), length = Number(form.calibLength);
  const tokens = Number.isFinite(samples * length) && samples > 0 && length > 0 ? samples * length : null;
  return (
    <Stack gap="sm" data-testid="calibration-fields">
      <PathInput label="Calibration text" description={`A UTF-8 text like the one the model will see; ${purpose} runs the original model on it.`}
        placeholder="/path/to/calibration.txt" value={form.calibText} onChange={(v) => set('calibText', v)} purpose="text"
        error={issues.calibText} testId="calib-text" />
      {calibrationOverlapsEvaluation(form) && (
        <Alert color="yellow" variant="light" p="xs" icon={<IconAlertTriangle size={16} />} data-testid="calib-overlap-warning">
          Calibration and evaluation use the same text: the result is measured on text it was tuned on, which flatters it. Choose another file for one of them.
        </Alert>
      )}
      <Group grow align="flex-start">
        {showSamples && (
          <NumberInput label="Samples N" description="Sequences drawn from the text" value={form.calibSamples} onChange={(v) => set('calibSamples', v)}
            min={1} max={4096} allowDecimal={false} error={issues.calibSamples} disabled={disabled} data-testid="calib-samples" />
        )}
        <NumberInput label="Length L (tokens)" description="Tokens per sequence" value={form.calibLength} onChange={(v) => set('calibLength', v)}
          min={8} max={8192} step={64} allowDecimal={false} error={issues.calibLength} disabled={disabled} data-testid="calib-length" />
        <NumberInput label="Seed" description="Same seed, same sequences" value={form.calibSeed} onChange={(v) => set('calibSeed', v)}
          min={0} allowDecimal={false} error={issues.calibSeed} disabled={disabled} data-testid="calib-seed" />
      </Group>
      {showSamples && tokens !== null && (
        <Text size="xs" c="dimmed" data-testid="calib-tokens">{samples.toLocaleString('en-US')} × {length.toLocaleString('en-US')} = {tokens.toLocaleString('en-US')} tokens; the text must hold at least that many.</Text>
      )}
    </Stack>
  );
}
