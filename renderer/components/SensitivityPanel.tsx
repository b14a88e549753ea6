import { Alert, Anchor, Button, Group, NumberInput, Paper, Stack, Text, Title } from '@mantine/core';
import { IconActivityHeartbeat } from '@tabler/icons-react';
import type { ErrorShape, QuantizePlan } from '../../preload/contract.ts';
import { jobPhase, type JobState } from '../lib/job-state.ts';
import {
  matchingKeepPatterns, parseKeepPatterns, roughDuration, sensitivitySeconds,
  type QuantizeForm, type QuantizeIssues, type SensitivityRow,
} from '../lib/quantize-form.ts';
import { href } from '../lib/route.ts';
import { CalibrationFields } from './CalibrationFields.tsx';
import { ErrorAlert } from './ErrorAlert.tsx';
import { JobPanel } from './JobPanel.tsx';
import { defaultTopK, SensitivityChart, type RowState } from './SensitivityChart.tsx';

interface Props {
  form: QuantizeForm;
  onChange: (next: QuantizeForm) => void;
  plan: QuantizePlan | null;
  samples: number | string;
  onSamples: (v: number | string) => void;
  onMeasure: () => void;
  starting: boolean;
  /** Why the job cannot start (shown after a click), or a start error. */
  problems: string[];
  startError: ErrorShape | null;
  job: JobState | null;
  result: { rows: SensitivityRow[]; baseline: { kl: number } | null; bits: number | null } | null;
  onApply: (k: number, mode: '8bit' | 'float') => void;
  topK: number | string | undefined;
  onTopK: (k: number | string) => void;
}

/** What the step does with a candidate now: an override gives it 8 bits, a keep pattern float. */
export function rowStateFor(form: QuantizeForm): (row: SensitivityRow) => RowState {
  const keep = parseKeepPatterns(form.keepText);
  const overrides = form.overrides.map((o) => o.pattern);
  return (row) => {
    if (row.weights.some((w) => matchingKeepPatterns(keep, w).length > 0)) return 'float';
    if (row.weights.some((w) => matchingKeepPatterns(overrides, w).length > 0)) return '8-bit';
    return null;
  };
}

/**
 * Per-layer sensitivity on the Weights step: the calibration it scores, a "Measure sensitivity" button
 * that starts an analysis job (progress per candidate from the job panel), then the ranking chart with
 * the "keep the top k" buttons that write overrides or keep patterns into the step.
 */
export function SensitivityPanel({ form, onChange, plan, samples, onSamples, onMeasure, starting, problems, startError, job, result, onApply, topK, onTopK }: Props) {
  const phase = job ? jobPhase(job) : null;
  const running = phase === 'starting' || phase === 'running';
  const n = Number(samples), l = Number(form.calibLength);
  const candidates = plan?.counts.quantize ?? 0;
  const estimate = plan?.parameters && candidates > 0 && n > 0 && l > 0
    ? roughDuration(sensitivitySeconds(plan.parameters, candidates, n * l)) : null;
  const noIssues: QuantizeIssues = {};
  return (
    <Paper withBorder radius="md" p="md" data-testid="sensitivity-panel">
      <Stack gap="md">
        <Group justify="space-between" align="flex-start" wrap="nowrap">
          <Stack gap={2}>
            <Title order={4}>Per-layer sensitivity</Title>
            <Text size="sm" c="dimmed">
              Quantizes one weight at a time with these settings and measures how far the model's predictions move (KL against the original) on calibration text.
              Raise the few most sensitive weights to 8-bit, or keep them in float, for a small size cost.
            </Text>
          </Stack>
        </Group>
        <CalibrationFields form={form} issues={noIssues} onChange={onChange} purpose="the analysis" showSamples={form.method === 'gptq'} disabled={running} />
        <Group align="flex-end" gap="md" wrap="wrap">
          <NumberInput label="Sequences scored" description="Per candidate, L tokens each" value={samples} onChange={onSamples} min={1} max={256}
            allowDecimal={false} w={200} disabled={running} data-testid="sensitivity-samples" />
          <Button leftSection={<IconActivityHeartbeat size={16} />} onClick={onMeasure} loading={starting} disabled={running} data-testid="measure-sensitivity">
            {result ? 'Measure again' : 'Measure sensitivity'}
          </Button>
          {estimate && (
            <Text size="xs" c="dimmed" pb={10} data-testid="sensitivity-estimate">
              {candidates} candidates + all together, {Number.isFinite(n * l) ? (n * l).toLocaleString('en-US') : '?'} tokens each: {estimate} (rough estimate).
            </Text>
          )}
        </Group>
        {problems.length > 0 && (
          <Alert color="red" variant="light" p="xs" data-testid="sensitivity-problems">{problems.join(' ')}</Alert>
        )}
        {startError && <ErrorAlert error={startError} testId="sensitivity-error" />}
        {job && (running || phase === 'failed' || phase === 'cancelled') && <JobPanel job={job} showMetrics={false} />}
        {result && result.rows.length > 0 && (
          <>
            <SensitivityChart rows={result.rows} baseline={result.baseline} bits={result.bits} stateOf={rowStateFor(form)} onApply={onApply}
              no8bitReason={form.bits === 8 ? 'The step is 8-bit already: keep them in float instead.' : null}
              k={topK ?? defaultTopK(result.rows.length)} onK={onTopK} />
            {job?.experimentId !== null && job?.experimentId !== undefined && (
              <Anchor href={href.historyDetail(job.experimentId)} size="xs">The analysis is kept as experiment #{job.experimentId} →</Anchor>
            )}
          </>
        )}
      </Stack>
    </Paper>
  );
}
