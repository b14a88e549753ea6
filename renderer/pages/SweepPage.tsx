import { Anchor, Badge, Button, Checkbox, Group, Paper, Skeleton, Stack, Table, Text, Title } from '@mantine/core';
import { IconArrowLeft, IconArrowsLeftRight, IconChartDots, IconPlayerTrackNext } from '@tabler/icons-react';
import { useState } from 'react';
import type { ExperimentStatus, SweepView } from '../../preload/contract.ts';
import { ErrorAlert } from '../components/ErrorAlert.tsx';
import { JsonBlock } from '../components/JsonBlock.tsx';
import { StatusBadge } from '../components/StatusBadge.tsx';
import { useApi } from '../hooks/useApi.ts';
import { useCall } from '../hooks/useCall.ts';
import { useEvent } from '../hooks/useEvent.ts';
import { useJobStore } from '../hooks/useJobs.ts';
import { useToast } from '../hooks/useToast.ts';
import { onAsync } from '../lib/async-handler.ts';
import { formatDateTime } from '../lib/format.ts';
import { formatMetric, metricLabel } from '../lib/metrics.ts';
import { href } from '../lib/route.ts';

const STATUS_ORDER: ExperimentStatus[] = ['done', 'running', 'queued', 'failed', 'cancelled', 'interrupted'];
/** The comparison page takes 2 to 8 experiments. */
const MAX_COMPARED = 8;

/** The comparison page of some experiments (`#/compare?ids=…`). */
export function compareHref(ids: readonly number[]): string {
  return `#/compare?${new URLSearchParams({ ids: ids.join(',') }).toString()}`;
}

/** The Pareto view of every experiment on one original model (`#/pareto?path=…`). */
export function paretoHref(modelPath: string): string {
  return `#/pareto?${new URLSearchParams({ path: modelPath }).toString()}`;
}

function MembersTable({ view, selected, onToggle }: { view: SweepView; selected: readonly number[]; onToggle: (id: number, on: boolean) => void }) {
  const keys = Object.keys(view.grid);
  const metricNames = [...new Set(view.members.flatMap((m) => m.headline.map((h) => h.name)))];
  return (
    <Table.ScrollContainer minWidth={520}>
      <Table striped highlightOnHover data-testid="sweep-members">
        <Table.Thead>
          <Table.Tr>
            <Table.Th w={36}><Text span size="xs" c="dimmed" title="Compare">⇄</Text></Table.Th>
            <Table.Th>#</Table.Th>
            <Table.Th>Name</Table.Th>
            {keys.map((k) => <Table.Th key={k}><Text size="sm" fw={600} ff="monospace" title={k}>{k.split('.').at(-1)}</Text></Table.Th>)}
            <Table.Th>Status</Table.Th>
            {metricNames.map((n) => <Table.Th key={n} ta="right">{metricLabel(n)}</Table.Th>)}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {view.members.map((m) => (
            <Table.Tr key={m.id} data-testid="sweep-member" data-id={m.id} data-status={m.status}>
              <Table.Td>
                <Checkbox size="xs" aria-label={`Compare experiment ${m.id}`} checked={selected.includes(m.id)} disabled={m.status !== 'done'}
                  onChange={(e) => onToggle(m.id, e.currentTarget.checked)} data-testid="sweep-member-select" />
              </Table.Td>
              <Table.Td><Anchor href={href.historyDetail(m.id)} size="sm">{m.id}</Anchor></Table.Td>
              <Table.Td><Anchor href={href.historyDetail(m.id)} size="sm" className="wrap-anywhere">{m.name}</Anchor></Table.Td>
              {keys.map((k) => <Table.Td key={k}><Text size="sm" ff="monospace">{String(m.assignment[k] ?? '—')}</Text></Table.Td>)}
              <Table.Td><StatusBadge status={m.status} /></Table.Td>
              {metricNames.map((n) => {
                const h = m.headline.find((x) => x.name === n);
                return <Table.Td key={n} ta="right"><Text size="sm" ff="monospace">{h ? formatMetric(h) : ''}</Text></Table.Td>;
              })}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

/** One sweep: its grid, its members with their values and statuses, "Resume sweep", and links to compare them. */
export function SweepPage({ id }: { id: number }) {
  const api = useApi();
  const store = useJobStore();
  const toast = useToast();
  const { data: view, error, loading, reload } = useCall('sweeps.get', { id });
  const [resuming, setResuming] = useState(false);
  // The experiments to compare: chosen with the row boxes; until then the first done ones (at most 8).
  const [chosen, setChosen] = useState<number[] | null>(null);
  useEvent('history.changed', () => reload({ quiet: true }));

  if (error) return <ErrorAlert error={error} testId="sweep-load-error" />;
  if (loading || !view) return <Skeleton h={240} />;

  const done = view.members.filter((m) => m.status === 'done');
  const selected = chosen ?? done.slice(0, MAX_COMPARED).map((m) => m.id);
  const toggle = (memberId: number, on: boolean): void => setChosen(on ? [...selected, memberId] : selected.filter((x) => x !== memberId));
  const comparable = selected.length >= 2 && selected.length <= MAX_COMPARED;
  const modelPath = view.members[0]?.modelPath ?? (view.recipe as { model?: { path?: string } } | null)?.model?.path ?? '';

  async function resume(): Promise<void> {
    setResuming(true);
    try {
      const started = await api.call('sweeps.resume', { id });
      for (const j of started.jobs) store.track(j.jobId, j.experimentId);
      toast.show({ title: 'Resume sweep', message: started.jobs.length === 0 ? 'Nothing to resume: every combination is done, queued or running.' : `${started.jobs.length} experiment(s) queued again.`, color: 'green' });
      reload({ quiet: true });
    } catch (e) {
      toast.error(e, 'Resume sweep');
    } finally {
      setResuming(false);
    }
  }

  return (
    <Stack gap="md" data-testid="sweep-page" data-id={view.id}>
      <Group justify="space-between" align="flex-start">
        <Stack gap={4} style={{ minWidth: 0, flex: 1 }}>
          <Title order={2} className="wrap-anywhere" data-testid="sweep-title">{view.name}</Title>
          <Group gap="xs">
            <Text size="sm" c="dimmed">Sweep #{view.id} · {formatDateTime(view.created)} · {view.size} combination{view.size === 1 ? '' : 's'}</Text>
            {STATUS_ORDER.filter((s) => view.counts[s]).map((s) => <Badge key={s} variant="light" color="gray" data-testid={`sweep-count-${s}`}>{view.counts[s]} {s}</Badge>)}
          </Group>
        </Stack>
        <Group gap="xs">
          <Button component="a" href={href.history()} variant="default" leftSection={<IconArrowLeft size={16} />}>History</Button>
          <Button component="a" href={comparable ? compareHref(selected) : undefined} variant="light" leftSection={<IconArrowsLeftRight size={16} />}
            disabled={!comparable} title={comparable ? undefined : `Tick 2 to ${MAX_COMPARED} finished experiments to compare`} data-testid="sweep-compare">
            Compare {selected.length} selected
          </Button>
          {modelPath && <Button component="a" href={paretoHref(modelPath)} variant="light" leftSection={<IconChartDots size={16} />} data-testid="sweep-pareto">Pareto view</Button>}
          {view.remaining > 0 && (
            <Button leftSection={<IconPlayerTrackNext size={16} />} onClick={onAsync(resume)} loading={resuming} data-testid="sweep-resume">
              Resume sweep ({view.remaining})
            </Button>
          )}
        </Group>
      </Group>

      <Paper withBorder radius="md" p="md">
        <Stack gap="xs">
          <Title order={4}>Grid</Title>
          {Object.entries(view.grid).map(([k, values]) => (
            <Text key={k} size="sm" ff="monospace" className="wrap-anywhere" data-testid="sweep-grid-row">{k} = {values.map(String).join(', ')}</Text>
          ))}
        </Stack>
      </Paper>

      <Paper withBorder radius="md" p="md">
        <Stack gap="xs">
          <Title order={4}>Experiments</Title>
          {view.members.length === 0 ? <Text size="sm" c="dimmed">No experiments yet.</Text> : <MembersTable view={view} selected={selected} onToggle={toggle} />}
          {view.remaining > 0 && (
            <Text size="sm" c="dimmed">{view.remaining} combination{view.remaining === 1 ? ' has' : 's have'} no finished or queued experiment (interrupted, cancelled or failed): Resume sweep queues {view.remaining === 1 ? 'it' : 'them'} again.</Text>
          )}
        </Stack>
      </Paper>

      <Paper withBorder radius="md" p="md">
        <Stack gap="xs">
          <Title order={4}>Base recipe</Title>
          <JsonBlock value={view.recipe} testId="sweep-recipe" />
        </Stack>
      </Paper>
    </Stack>
  );
}
