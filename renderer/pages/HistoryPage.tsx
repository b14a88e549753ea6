import {
  ActionIcon, Anchor, Badge, Button, Checkbox, Chip, Group, NativeSelect, Pagination, Paper, Skeleton, Stack, Table, Text, TextInput, Title, UnstyledButton,
} from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { IconArrowDown, IconArrowUp, IconHistory, IconPin, IconPinFilled, IconSearch, IconSelector, IconStar, IconStarFilled } from '@tabler/icons-react';
import { memo, useCallback, useEffect, useMemo, useState, type ReactNode } from 'react';
import type { ExperimentStatus, ExperimentSummary, KindCount } from '../../preload/contract.ts';
import { JOB_KINDS } from '../../preload/methods.ts';
import { EmptyNote } from '../components/EmptyNote.tsx';
import { ImportBundleButton } from '../components/BundleButtons.tsx';
import { RecentSweeps } from '../components/RecentSweeps.tsx';
import { ErrorAlert } from '../components/ErrorAlert.tsx';
import { StatusBadge } from '../components/StatusBadge.tsx';
import { useApi } from '../hooks/useApi.ts';
import { useCall } from '../hooks/useCall.ts';
import { useEvent } from '../hooks/useEvent.ts';
import { navigate, replaceHash } from '../hooks/useRoute.ts';
import { useToast } from '../hooks/useToast.ts';
import { onAsync } from '../lib/async-handler.ts';
import { baseName, formatBytes, formatDateTime, formatDuration } from '../lib/format.ts';
import { formatMetric, metricLabel, sortMetrics } from '../lib/metrics.ts';
import { DEFAULT_HISTORY_QUERY, href, parseHash, type HistoryQuery, type HistorySort } from '../lib/route.ts';

export const PAGE_SIZE = 25;
/** How many of the most used tags are offered as filter chips. */
const TAG_CHIPS = 24;
const SEARCH_DEBOUNCE_MS = 250;

const STATUSES: ExperimentStatus[] = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'];

/**
 * The rows ticked in the list (kept across pages and filters) and what to do with them: the page shows
 * a bar above the list with the count, "Clear", and what `actions` renders (e.g. "Compare selected").
 */
export type SelectionActions = (selected: readonly number[], clear: () => void) => ReactNode;

function durationOf(e: ExperimentSummary): string {
  if (!e.finished) return e.status === 'running' ? 'running' : '—';
  return formatDuration(new Date(e.finished).getTime() - new Date(e.created).getTime());
}

/** The sort after the search text changes: best matches first while searching, unless a column was chosen. */
function sortForSearch(query: HistoryQuery, search: string): HistorySort {
  if (search && !query.search && query.sort === 'created' && query.order === 'desc') return 'relevance';
  if (!search && query.sort === 'relevance') return 'created';
  return query.sort;
}

/**
 * The list's filters as the address holds them now. Handlers inside the memoised table read them when
 * they run, so the table needs no re-render when only the search text or another filter changed.
 */
function currentQuery(): HistoryQuery {
  const route = parseHash(window.location.hash);
  return route.name === 'history' ? route.query : DEFAULT_HISTORY_QUERY;
}

function SortHeader({ column, sort, order, children }: { column: HistorySort; sort: HistorySort; order: 'asc' | 'desc'; children: string }) {
  const active = sort === column;
  const Icon = active ? (order === 'asc' ? IconArrowUp : IconArrowDown) : IconSelector;
  const nextOrder = active ? (order === 'asc' ? 'desc' : 'asc') : column === 'created' ? 'desc' : 'asc';
  return (
    <Table.Th aria-sort={active ? (order === 'asc' ? 'ascending' : 'descending') : undefined}>
      <UnstyledButton onClick={() => replaceHash(href.history({ ...currentQuery(), sort: column, order: nextOrder, page: 1 }))} data-testid={`sort-${column}`}>
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

interface RowActions {
  selected: ReadonlySet<number>;
  onSelect: (ids: readonly number[], on: boolean) => void;
  onMark: (e: ExperimentSummary, change: { starred?: boolean; pinned?: boolean }) => void;
  onTag: (tag: string) => void;
}

// Native titles rather than tooltips: 25 rows × 2 floating tooltips cost more to render than the rows.
function Marks({ e, onMark }: { e: ExperimentSummary; onMark: RowActions['onMark'] }) {
  return (
    <Group gap={0} wrap="nowrap">
      <ActionIcon variant="subtle" color={e.starred ? 'yellow' : 'gray'} aria-label={e.starred ? 'Unstar' : 'Star'} title={e.starred ? 'Unstar' : 'Star'} aria-pressed={e.starred}
        onClick={() => onMark(e, { starred: !e.starred })} data-testid="row-star">
        {e.starred ? <IconStarFilled size={16} /> : <IconStar size={16} />}
      </ActionIcon>
      <ActionIcon variant="subtle" color={e.pinned ? 'blue' : 'gray'} aria-label={e.pinned ? 'Unpin' : 'Pin'} title={e.pinned ? 'Unpin' : 'Pin to the top'} aria-pressed={e.pinned}
        onClick={() => onMark(e, { pinned: !e.pinned })} data-testid="row-pin">
        {e.pinned ? <IconPinFilled size={16} /> : <IconPin size={16} />}
      </ActionIcon>
    </Group>
  );
}

/** Memoised: typing in the search box or ticking a filter re-renders the page, not the rows, until the answer changes. */
const HistoryTable = memo(function HistoryTable({ items, sort, order, filterTags, actions }: {
  items: ExperimentSummary[]; sort: HistorySort; order: 'asc' | 'desc'; filterTags: string; actions: RowActions;
}) {
  const filtering = new Set(filterTags.split('\n'));
  const onPage = items.map((e) => e.id);
  const ticked = onPage.filter((id) => actions.selected.has(id)).length;
  return (
    <Table.ScrollContainer minWidth={860}>
      <Table highlightOnHover verticalSpacing="sm" data-testid="history-table">
        <Table.Thead>
          <Table.Tr>
            <Table.Th w={36}>
              <Checkbox aria-label="Select every experiment on this page" checked={ticked > 0 && ticked === onPage.length} indeterminate={ticked > 0 && ticked < onPage.length}
                onChange={(ev) => actions.onSelect(onPage, ev.currentTarget.checked)} data-testid="history-select-page" />
            </Table.Th>
            <Table.Th w={72}><Text size="sm" fw={600} c="dimmed" aria-label="Star and pin">★</Text></Table.Th>
            <SortHeader column="created" sort={sort} order={order}>Created</SortHeader>
            <SortHeader column="name" sort={sort} order={order}>Name</SortHeader>
            <SortHeader column="kind" sort={sort} order={order}>Kind</SortHeader>
            <SortHeader column="status" sort={sort} order={order}>Status</SortHeader>
            <Table.Th>Results</Table.Th>
            <Table.Th>Duration</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {items.map((e) => (
            <Table.Tr key={e.id} className="clickable-row"
              onClick={(ev) => { if (!(ev.target as HTMLElement).closest('a, button, input, label')) navigate(href.historyDetail(e.id)); }}
              data-testid="history-row" data-id={e.id} data-status={e.status} data-starred={e.starred} data-pinned={e.pinned}>
              <Table.Td>
                <Checkbox aria-label={`Select ${e.name}`} checked={actions.selected.has(e.id)} onChange={(ev) => actions.onSelect([e.id], ev.currentTarget.checked)} data-testid="history-select" />
              </Table.Td>
              <Table.Td><Marks e={e} onMark={actions.onMark} /></Table.Td>
              <Table.Td style={{ whiteSpace: 'nowrap' }}>{formatDateTime(e.created)}</Table.Td>
              <Table.Td style={{ minWidth: 200 }}>
                <Anchor href={href.historyDetail(e.id)} size="sm" fw={600} data-testid="history-row-name">{e.name}</Anchor>
                <Text size="xs" c="dimmed" truncate title={e.modelPath} maw={360}>{baseName(e.modelPath)} · {formatBytes(e.modelBytes)}</Text>
                {e.tags.length > 0 && (
                  <Group gap={4} mt={4}>
                    {e.tags.map((t) => (
                      <UnstyledButton key={t} onClick={() => actions.onTag(t)} aria-label={`Filter by tag ${t}`} data-testid="history-row-tag">
                        <Badge size="xs" variant={filtering.has(t) ? 'filled' : 'light'} style={{ textTransform: 'none', cursor: 'pointer' }}>{t}</Badge>
                      </UnstyledButton>
                    ))}
                  </Group>
                )}
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
});

function kindLabel(k: KindCount): string {
  return `${k.kind} (${k.count.toLocaleString('en')})`;
}

/** The search box keeps what is typed to itself: a keystroke re-renders the box, not the page. */
function SearchBox({ query }: { query: HistoryQuery }) {
  const [search, setSearch] = useState(query.search);
  const [debounced] = useDebouncedValue(search, SEARCH_DEBOUNCE_MS);
  // The address changed the search from elsewhere (the History tab, back): show that, not what was typed.
  const [shown, setShown] = useState(query.search);
  if (query.search !== shown) {
    setShown(query.search);
    if (query.search !== debounced) setSearch(query.search);
  }
  useEffect(() => {
    // Only text the debounce has settled on goes into the address.
    if (debounced === search && debounced !== query.search) replaceHash(href.history({ ...query, search: debounced, sort: sortForSearch(query, debounced), page: 1 }));
  }, [debounced, search, query]);
  return (
    <TextInput placeholder="Search names, models, notes, tags…" leftSection={<IconSearch size={16} />} value={search}
      onChange={(e) => setSearch(e.currentTarget.value)} aria-label="Search the history" style={{ flex: 1, minWidth: 220 }} data-testid="history-search" />
  );
}

export function HistoryPage({ query, selectionActions }: { query: HistoryQuery; selectionActions?: SelectionActions }) {
  const api = useApi();
  const toast = useToast();
  const [selected, setSelected] = useState<ReadonlySet<number>>(new Set());

  const list = useCall('history.list', {
    search: query.search || undefined,
    status: (query.status || undefined) as ExperimentStatus | undefined,
    kind: query.kind || undefined,
    tags: query.tags.length ? query.tags : undefined,
    starred: query.starred || undefined,
    sort: query.sort,
    order: query.order,
    limit: PAGE_SIZE,
    offset: (query.page - 1) * PAGE_SIZE,
  });
  const kinds = useCall('history.kinds', {});
  const tags = useCall('history.tags', { limit: TAG_CHIPS });
  useEvent('history.changed', () => {
    list.reload({ quiet: true });
    kinds.reload({ quiet: true });
    tags.reload({ quiet: true });
  });

  const go = (change: Partial<HistoryQuery>) => replaceHash(href.history({ ...query, page: 1, ...change }));
  const toggleTag = useCallback((tag: string) => {
    const now = currentQuery();
    replaceHash(href.history({ ...now, page: 1, tags: now.tags.includes(tag) ? now.tags.filter((t) => t !== tag) : [...now.tags, tag] }));
  }, []);
  const onSelect = useCallback((ids: readonly number[], on: boolean) => setSelected((s) => {
    const next = new Set(s);
    for (const id of ids) if (on) next.add(id); else next.delete(id);
    return next;
  }), []);
  const reloadList = list.reload;
  const onMark = useMemo(() => onAsync(async (e: ExperimentSummary, change: { starred?: boolean; pinned?: boolean }) => {
    try {
      await api.call('history.update', { id: e.id, ...change });
      reloadList({ quiet: true });
    } catch (err) {
      toast.error(err, change.pinned === undefined ? 'Starring' : 'Pinning');
    }
  }), [api, toast, reloadList]);
  const actions = useMemo<RowActions>(() => ({ selected, onSelect, onMark, onTag: toggleTag }), [selected, onSelect, onMark, toggleTag]);

  const kindOptions: KindCount[] = [...(kinds.data ?? JOB_KINDS.map((kind) => ({ kind, count: 0 })))];
  if (query.kind && !kindOptions.some((k) => k.kind === query.kind)) kindOptions.push({ kind: query.kind, count: 0 });
  const tagChips = [...(tags.data ?? []).map((t) => t.tag), ...query.tags].filter((t, i, all) => all.indexOf(t) === i);

  const filtered = !!(query.search || query.status || query.kind || query.tags.length || query.starred);
  const total = list.data?.total ?? 0;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));

  return (
    <Stack gap="md">
      <Group justify="space-between">
        <Group gap="sm"><Title order={2}>History</Title><RecentSweeps /><ImportBundleButton size="xs" /></Group>
        {list.data && (
          <Text size="sm" c="dimmed">
            <span data-testid="history-total">{total}</span> experiment{total === 1 ? '' : 's'}
            {query.search && query.sort === 'relevance' && ' · best matches first'}
            {query.search && query.sort !== 'relevance' && (
              <> · <Anchor component="button" size="sm" onClick={() => go({ sort: 'relevance', order: 'desc' })} data-testid="history-sort-relevance">best matches first</Anchor></>
            )}
          </Text>
        )}
      </Group>
      <Group gap="sm" align="flex-end">
        <SearchBox query={query} />
        <NativeSelect aria-label="Status" value={query.status} data={[{ value: '', label: 'Any status' }, ...STATUSES.map((s) => ({ value: s, label: s }))]}
          onChange={(e) => go({ status: e.currentTarget.value })} data-testid="history-status-filter" />
        <NativeSelect aria-label="Kind" value={query.kind} data={[{ value: '', label: 'Any kind' }, ...kindOptions.map((k) => ({ value: k.kind, label: kinds.data ? kindLabel(k) : k.kind }))]}
          onChange={(e) => go({ kind: e.currentTarget.value })} data-testid="history-kind-filter" />
        <Chip checked={query.starred} onChange={(on) => go({ starred: on })} icon={<IconStarFilled size={12} />} data-testid="history-starred-filter">Starred</Chip>
      </Group>
      {tagChips.length > 0 && (
        <Group gap={6} data-testid="history-tag-filter" aria-label="Filter by tags">
          <Text size="xs" c="dimmed">Tags</Text>
          {tagChips.map((t) => (
            <Chip key={t} size="xs" checked={query.tags.includes(t)} onChange={() => toggleTag(t)} data-testid="history-tag-chip" data-tag={t}>{t}</Chip>
          ))}
          {query.tags.length > 0 && <Anchor component="button" size="xs" onClick={() => go({ tags: [] })}>clear tags</Anchor>}
        </Group>
      )}
      {selected.size > 0 && (
        <Paper withBorder radius="md" px="md" py="xs" data-testid="history-selection">
          <Group gap="sm">
            <Text size="sm"><span data-testid="history-selected-count">{selected.size}</span> selected</Text>
            {selectionActions?.([...selected], () => setSelected(new Set()))}
            <Button size="xs" variant="subtle" onClick={() => setSelected(new Set())} data-testid="history-selection-clear">Clear selection</Button>
          </Group>
        </Paper>
      )}
      <Paper withBorder radius="md">
        {list.loading && !list.data && <Stack p="md" gap="xs">{[0, 1, 2, 3].map((i) => <Skeleton key={i} h={36} />)}</Stack>}
        {list.error && <ErrorAlert error={list.error} testId="history-error" />}
        {list.data && list.data.items.length > 0 && <HistoryTable items={list.data.items} sort={query.sort} order={query.order} filterTags={query.tags.join('\n')} actions={actions} />}
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
