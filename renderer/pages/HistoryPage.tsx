import { Anchor, Group, NativeSelect, Pagination, Paper, Skeleton, Stack, Table, Text, TextInput, Title, UnstyledButton } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { IconArrowDown, IconArrowUp, IconHistory, IconSearch, IconSelector } from '@tabler/icons-react';
import { useEffect, useState } from 'react';
import type { ExperimentStatus, ExperimentSummary } from '../../preload/contract.ts';
import { JOB_KINDS } from '../../preload/methods.ts';
import { EmptyNote } from '../components/EmptyNote.tsx';
import { ErrorAlert } from '../components/ErrorAlert.tsx';
import { StatusBadge } from '../components/StatusBadge.tsx';
import { useCall } from '../hooks/useCall.ts';
import { useEvent } from '../hooks/useEvent.ts';
import { navigate, replaceHash } from '../hooks/useRoute.ts';
import { baseName, formatBytes, formatDateTime, formatDuration } from '../lib/format.ts';
import { formatMetric, metricLabel, sortMetrics } from '../lib/metrics.ts';
import { href, type HistoryQuery, type HistorySort } from '../lib/route.ts';

export const PAGE_SIZE = 25;

const STATUSES: ExperimentStatus[] = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'];

function durationOf(e: ExperimentSummary): string {
  if (!e.finished) return e.status === 'running' ? 'running' : '—';
  return formatDuration(new Date(e.finished).getTime() - new Date(e.created).getTime());
}

function SortHeader({ column, query, children }: { column: HistorySort; query: HistoryQuery; children: string }) {
  const active = query.sort === column;
  const Icon = active ? (query.order === 'asc' ? IconArrowUp : IconArrowDown) : IconSelector;
  const nextOrder = active ? (query.order === 'asc' ? 'desc' : 'asc') : column === 'created' ? 'desc' : 'asc';
  return (
    <Table.Th aria-sort={active ? (query.order === 'asc' ? 'ascending' : 'descending') : undefined}>
      <UnstyledButton onClick={() => replaceHash(href.history({ ...query, sort: column, order: nextOrder, page: 1 }))} data-testid={`sort-${column}`}>
        <Group gap={4} wrap="nowrap"><Text size="sm" fw={600}>{children}</Text><Icon size={14} /></Group>
      </UnstyledButton>
    </Table.Th>
  );
}

function Headline({ e }: { e: ExperimentSummary }) {
  if (e.headline.length === 0) return <Text size="sm" c="dimmed">—</Text>;
  return (
    <Stack gap={0}>
      {sortMetrics(e.headline).slice(0, 3).map((m) => (
        <Text key={`${m.name}/${m.subject}`} size="xs" style={{ whiteSpace: 'nowrap' }} data-metric={m.name}>
          <Text span size="xs" c="dimmed">{metricLabel(m.name)}</Text> <Text span size="xs" fw={600}>{formatMetric(m)}</Text>
        </Text>
      ))}
    </Stack>
  );
}

function HistoryTable({ items, query }: { items: ExperimentSummary[]; query: HistoryQuery }) {
  return (
    <Table.ScrollContainer minWidth={760}>
      <Table highlightOnHover verticalSpacing="sm" data-testid="history-table">
        <Table.Thead>
          <Table.Tr>
            <SortHeader column="created" query={query}>Created</SortHeader>
            <SortHeader column="name" query={query}>Name</SortHeader>
            <SortHeader column="kind" query={query}>Kind</SortHeader>
            <SortHeader column="status" query={query}>Status</SortHeader>
            <Table.Th>Results</Table.Th>
            <Table.Th>Duration</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {items.map((e) => (
            <Table.Tr key={e.id} className="clickable-row" onClick={(ev) => { if (!(ev.target as HTMLElement).closest('a')) navigate(href.historyDetail(e.id)); }}
              data-testid="history-row" data-id={e.id} data-status={e.status}>
              <Table.Td style={{ whiteSpace: 'nowrap' }}>{formatDateTime(e.created)}</Table.Td>
              <Table.Td style={{ minWidth: 200 }}>
                <Anchor href={href.historyDetail(e.id)} size="sm" fw={600} data-testid="history-row-name">{e.name}</Anchor>
                <Text size="xs" c="dimmed" truncate title={e.modelPath} maw={360}>{baseName(e.modelPath)} · {formatBytes(e.modelBytes)}</Text>
              </Table.Td>
              <Table.Td>{e.kind}</Table.Td>
              <Table.Td style={{ whiteSpace: 'nowrap' }}><StatusBadge status={e.status} /></Table.Td>
              <Table.Td><Headline e={e} /></Table.Td>
              <Table.Td style={{ whiteSpace: 'nowrap' }}>{durationOf(e)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

export function HistoryPage({ query }: { query: HistoryQuery }) {
  const [search, setSearch] = useState(query.search);
  const [debounced] = useDebouncedValue(search, 300);

  useEffect(() => {
    if (debounced !== query.search) replaceHash(href.history({ ...query, search: debounced, page: 1 }));
  }, [debounced, query]);

  const list = useCall('history.list', {
    search: query.search || undefined,
    status: (query.status || undefined) as ExperimentStatus | undefined,
    kind: query.kind || undefined,
    sort: query.sort,
    order: query.order,
    limit: PAGE_SIZE,
    offset: (query.page - 1) * PAGE_SIZE,
  });
  useEvent('history.changed', () => list.reload({ quiet: true }));

  const filtered = !!(query.search || query.status || query.kind);
  const total = list.data?.total ?? 0;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));

  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Title order={2}>History</Title>
        {list.data && <Text size="sm" c="dimmed"><span data-testid="history-total">{total}</span> experiment{total === 1 ? '' : 's'}</Text>}
      </Group>
      <Group gap="sm" align="flex-end">
        <TextInput placeholder="Search names, models, notes…" leftSection={<IconSearch size={16} />} value={search}
          onChange={(e) => setSearch(e.currentTarget.value)} aria-label="Search the history" style={{ flex: 1, minWidth: 220 }} data-testid="history-search" />
        <NativeSelect aria-label="Status" value={query.status} data={[{ value: '', label: 'Any status' }, ...STATUSES.map((s) => ({ value: s, label: s }))]}
          onChange={(e) => replaceHash(href.history({ ...query, status: e.currentTarget.value, page: 1 }))} data-testid="history-status-filter" />
        <NativeSelect aria-label="Kind" value={query.kind} data={[{ value: '', label: 'Any kind' }, ...JOB_KINDS.map((k) => ({ value: k, label: k }))]}
          onChange={(e) => replaceHash(href.history({ ...query, kind: e.currentTarget.value, page: 1 }))} data-testid="history-kind-filter" />
      </Group>
      <Paper withBorder radius="md">
        {list.loading && !list.data && <Stack p="md" gap="xs">{[0, 1, 2, 3].map((i) => <Skeleton key={i} h={36} />)}</Stack>}
        {list.error && <ErrorAlert error={list.error} testId="history-error" />}
        {list.data && list.data.items.length > 0 && <HistoryTable items={list.data.items} query={query} />}
        {list.data && list.data.items.length === 0 && (
          filtered
            ? <EmptyNote icon={<IconSearch size={24} />} title="Nothing matches" testId="history-empty">Try other words or clear the filters.</EmptyNote>
            : <EmptyNote icon={<IconHistory size={24} />} title="No experiments yet" testId="history-empty">
                Evaluate a model and the run shows up here. <Anchor href={href.home()}>Open a model</Anchor>.
              </EmptyNote>
        )}
      </Paper>
      {pages > 1 && (
        <Group justify="center">
          <Pagination total={pages} value={Math.min(query.page, pages)} onChange={(page) => replaceHash(href.history({ ...query, page }))} data-testid="history-pagination" />
        </Group>
      )}
    </Stack>
  );
}
