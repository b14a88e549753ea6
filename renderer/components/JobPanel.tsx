import { Alert, Anchor, Badge, Button, Group, Paper, Progress, Stack, Text, Title, Tooltip } from '@mantine/core';
import { IconCircleCheck, IconPlayerStop } from '@tabler/icons-react';
import { useState } from 'react';
import { useApi } from '../hooks/useApi.ts';
import { useToast } from '../hooks/useToast.ts';
import { formatEta, formatInteger, formatPercent } from '../lib/format.ts';
import { jobPhase, phaseLabel, progressBar, type JobPhase, type JobState } from '../lib/job-state.ts';
import { href } from '../lib/route.ts';
import { ErrorAlert } from './ErrorAlert.tsx';
import { JobLog } from './JobLog.tsx';
import { MetricsGrid } from './MetricsGrid.tsx';
import { onAsync } from '../lib/async-handler.ts';

const PHASE_COLOR: Record<JobPhase, string> = { starting: 'gray', running: 'blue', done: 'green', failed: 'red', cancelled: 'gray' };

/** A job while it runs (progress, ETA, log, Cancel) and after (metrics, outcome, link to its history entry).
 *  `showMetrics={false}` leaves the metrics to a page that presents them itself (the Quantize comparison). */
export function JobPanel({ job, showMetrics = true }: { job: JobState; showMetrics?: boolean }) {
  const api = useApi();
  const toast = useToast();
  const [cancelling, setCancelling] = useState(false);
  const phase = jobPhase(job);
  const shownPhase = job.interrupted ? 'interrupted' : phase;
  const active = phase === 'starting' || phase === 'running';
  const p = job.progress;
  // One bar for the whole job: the phases as segments, each filled as far as the job has got.
  const bar = progressBar(p, phase === 'done');
  const pct = bar.percent;
  const color = PHASE_COLOR[phase] === 'gray' && active ? 'blue' : PHASE_COLOR[phase];

  async function cancel() {
    setCancelling(true);
    try {
      await api.call('jobs.cancel', { jobId: job.jobId });
    } catch (e) {
      toast.error(e, 'Cancel');
      setCancelling(false);
    }
  }

  return (
    <Paper withBorder p="md" radius="md" data-testid="job-panel" data-job-id={job.jobId} data-state={phase}>
      <Stack gap="sm">
        <Group justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Title order={4}>Job</Title>
            <Badge color={job.interrupted ? 'orange' : PHASE_COLOR[phase]} variant="light" data-testid="job-status">{shownPhase}</Badge>
            {job.experimentId !== null && <Text size="sm" c="dimmed">experiment #{job.experimentId}</Text>}
          </Group>
          {active && (
            <Button color="red" variant="light" leftSection={<IconPlayerStop size={16} />} onClick={onAsync(cancel)} loading={cancelling} data-testid="job-cancel">
              Cancel
            </Button>
          )}
        </Group>

        <div>
          <Group justify="space-between" mb={4} wrap="nowrap">
            <Text size="sm" fw={600} data-testid="job-phase" data-phase={p?.phase ?? ''} truncate>{p ? phaseLabel(p.phase) : active ? 'Starting…' : ''}</Text>
            <Group gap="md" wrap="nowrap">
              {p && p.total > 0 && <Text size="sm" c="dimmed" data-testid="job-counts" title="this phase">{formatInteger(p.done)} / {formatInteger(p.total)}</Text>}
              <Text size="sm" fw={600} data-testid="job-percent">{pct === null ? '…' : formatPercent(pct)}</Text>
            </Group>
          </Group>
          {bar.sections.length > 1 ? (
            <Progress.Root size="lg" radius="sm" aria-label="Job progress" data-testid="job-progress" data-percent={pct === null ? '' : pct.toFixed(1)}>
              {bar.sections.map((section, i) => (
                <Tooltip key={`${section.phase}-${i}`} label={`${section.label}: ${formatPercent(section.width)} of the job`} withArrow>
                  <Progress.Section value={section.width} color="transparent" data-testid="job-progress-segment" data-phase={section.phase}
                    style={{ borderRight: i < bar.sections.length - 1 ? '2px solid var(--mantine-color-body)' : undefined, display: 'flex' }}>
                    <div style={{ width: `${section.width > 0 ? (100 * section.filled) / section.width : 0}%`, height: '100%', background: `var(--mantine-color-${color}-filled)`, opacity: section.current ? 1 : 0.8 }} />
                  </Progress.Section>
                </Tooltip>
              ))}
            </Progress.Root>
          ) : (
            <Progress
              value={pct ?? 100}
              animated={active}
              striped={active && pct === null}
              color={color}
              size="lg"
              radius="sm"
              aria-label="Job progress"
              data-testid="job-progress"
              data-percent={pct === null ? '' : pct.toFixed(1)}
            />
          )}
          <Group justify="space-between" mt={4} wrap="nowrap">
            <Text size="xs" c="dimmed" truncate data-testid="job-message">{p?.message ?? ''}</Text>
            {active && <Text size="xs" c="dimmed" data-testid="job-eta">{formatEta(p?.etaSeconds)}</Text>}
          </Group>
        </div>

        {job.result && showMetrics && (
          <div data-testid="job-results">
            <Text size="sm" fw={600} mb={6}>Results</Text>
            <MetricsGrid metrics={job.result.metrics} />
          </div>
        )}

        {job.finished?.status === 'done' && (
          <Alert color="green" variant="light" icon={<IconCircleCheck size={20} />} title="Finished" data-testid="job-finished">
            The results are saved in the history.
          </Alert>
        )}
        {job.interrupted && (
          <Alert color="orange" variant="light" title="Interrupted" data-testid="job-interrupted">
            Whittle stopped while this job ran, so it did not finish. Re-run it from its history entry.
          </Alert>
        )}
        {job.finished?.status === 'failed' && job.finished.error && <ErrorAlert error={job.finished.error} testId="job-error" />}
        {job.finished?.status === 'failed' && !job.finished.error && !job.interrupted && (
          <Alert color="red" variant="light" title="The job failed" data-testid="job-error">No error was reported; see the log.</Alert>
        )}
        {job.finished?.status === 'cancelled' && (
          <Alert color="gray" variant="light" title="Cancelled" data-testid="job-cancelled">The job was cancelled before it finished.</Alert>
        )}
        {job.finished && job.experimentId !== null && (
          <Anchor href={href.historyDetail(job.experimentId)} data-testid="job-history-link">Open experiment #{job.experimentId} in the history →</Anchor>
        )}

        <div>
          <Text size="sm" fw={600} mb={4}>Log</Text>
          <JobLog lines={job.log} />
        </div>
      </Stack>
    </Paper>
  );
}
