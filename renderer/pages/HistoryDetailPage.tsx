import {
  ActionIcon, Anchor, Button, Collapse, Group, Modal, Paper, SimpleGrid, Skeleton, Stack, Table, TagsInput, Text, Textarea, TextInput, Title, Tooltip,
} from '@mantine/core';
import { IconArrowLeft, IconArrowsLeftRight, IconCheck, IconChevronDown, IconChevronRight, IconEdit, IconGridDots, IconPencil, IconPin, IconPinFilled, IconPlayerTrackNext, IconRefresh, IconStar, IconStarFilled, IconTrash, IconX } from '@tabler/icons-react';
import { useEffect, useState, type ReactNode } from 'react';
import type { ExperimentDetail } from '../../preload/contract.ts';
import { planResume, withoutResume } from '../../preload/resume.ts';
import { ErrorAlert } from '../components/ErrorAlert.tsx';
import { CompareWithButton, ParetoButton } from '../components/CompareWith.tsx';
import { JobLog } from '../components/JobLog.tsx';
import { JsonBlock } from '../components/JsonBlock.tsx';
import { MetricsTable } from '../components/MetricsGrid.tsx';
import { SensitivityChart } from '../components/SensitivityChart.tsx';
import { StatCard } from '../components/StatCard.tsx';
import { StatusBadge } from '../components/StatusBadge.tsx';
import { useApi } from '../hooks/useApi.ts';
import { useCall } from '../hooks/useCall.ts';
import { useEvent } from '../hooks/useEvent.ts';
import { useJobStore } from '../hooks/useJobs.ts';
import { navigate } from '../hooks/useRoute.ts';
import { useToast } from '../hooks/useToast.ts';
import { formatBytes, formatDateTime, formatDuration } from '../lib/format.ts';
import { sensitivityOf } from '../lib/quantize-form.ts';
import { storedCurve } from '../lib/train-curve.ts';
import { TrainCurves } from '../components/TrainCurves.tsx';
import { editHref, href, wizardHref } from '../lib/route.ts';
import { SweepDialog } from '../components/SweepDialog.tsx';
import { LineageTree } from '../components/LineageTree.tsx';
import { ReportButton } from '../components/ReportButton.tsx';
import { ExportBundleButton } from '../components/BundleButtons.tsx';
import { GgufPanel, hasGgufComparison } from '../components/GgufPanel.tsx';
import { transport } from '../bridge/index.ts';
import { downloadFolder } from '../lib/download.ts';
import { onAsync } from '../lib/async-handler.ts';

function Section({ title, children, testId }: { title: string; children: ReactNode; testId?: string }) {
  return (
    <Paper withBorder radius="md" p="md" data-testid={testId}>
      <Title order={4} mb="sm">{title}</Title>
      {children}
    </Paper>
  );
}

function EditableName({ detail, onSave }: { detail: ExperimentDetail; onSave: (name: string) => Promise<void> }) {
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState(detail.name);
  const [saving, setSaving] = useState(false);
  async function save() {
    const name = value.trim();
    if (!name || name === detail.name) { setEditing(false); return; }
    setSaving(true);
    try {
      await onSave(name);
      setEditing(false);
    } finally {
      setSaving(false);
    }
  }
  if (!editing) {
    return (
      <Group gap="xs" wrap="nowrap" style={{ minWidth: 0 }}>
        <Title order={2} className="wrap-anywhere" data-testid="detail-name">{detail.name}</Title>
        <Tooltip label="Rename">
          <ActionIcon variant="subtle" onClick={() => { setValue(detail.name); setEditing(true); }} aria-label="Rename" data-testid="detail-name-edit"><IconPencil size={18} /></ActionIcon>
        </Tooltip>
      </Group>
    );
  }
  return (
    <Group gap="xs" wrap="nowrap" style={{ flex: 1 }}>
      <TextInput value={value} onChange={(e) => setValue(e.currentTarget.value)} maxLength={200} autoFocus style={{ flex: 1 }}
        onKeyDown={(e) => { if (e.key === 'Enter') void save(); if (e.key === 'Escape') setEditing(false); }} aria-label="Name" data-testid="detail-name-input" />
      <ActionIcon variant="filled" onClick={onAsync(save)} loading={saving} aria-label="Save name" data-testid="detail-name-save"><IconCheck size={18} /></ActionIcon>
      <ActionIcon variant="default" onClick={() => setEditing(false)} aria-label="Cancel rename"><IconX size={18} /></ActionIcon>
    </Group>
  );
}

function Notes({ detail, onSave }: { detail: ExperimentDetail; onSave: (notes: string) => Promise<void> }) {
  const [value, setValue] = useState(detail.notes);
  const [saving, setSaving] = useState(false);
  useEffect(() => setValue(detail.notes), [detail.notes]);
  const dirty = value !== detail.notes;
  return (
    <Stack gap="xs">
      <Textarea value={value} onChange={(e) => setValue(e.currentTarget.value)} autosize minRows={3} maxRows={12} maxLength={20_000}
        placeholder="What did you learn from this run?" aria-label="Notes" data-testid="detail-notes" />
      <Group justify="flex-end">
        <Button size="xs" disabled={!dirty} loading={saving} data-testid="detail-notes-save"
          onClick={onAsync(async () => { setSaving(true); try { await onSave(value); } finally { setSaving(false); } })}>
          Save notes
        </Button>
      </Group>
    </Stack>
  );
}

function Artefacts({ detail }: { detail: ExperimentDetail }) {
  const toast = useToast();
  // In a browser the files sit on the machine running Whittle: a folder downloads as a zip.
  const zip = transport() === 'serve';
  if (detail.artefacts.length === 0) return <Text size="sm" c="dimmed">No files were written.</Text>;
  return (
    <Table data-testid="detail-artefacts">
      <Table.Thead><Table.Tr><Table.Th>Kind</Table.Th><Table.Th>Path</Table.Th><Table.Th ta="right">Size</Table.Th>{zip && <Table.Th />}</Table.Tr></Table.Thead>
      <Table.Tbody>
        {detail.artefacts.map((a) => (
          <Table.Tr key={`${a.kind}/${a.path}`}>
            <Table.Td>{a.kind}</Table.Td>
            <Table.Td><Text size="sm" ff="monospace" className="wrap-anywhere">{a.path}</Text></Table.Td>
            <Table.Td ta="right">{formatBytes(a.bytes)}</Table.Td>
            {zip && (
              <Table.Td ta="right">
                {a.kind === 'folder' && (
                  <Button size="compact-xs" variant="subtle" data-testid="detail-download-folder"
                    onClick={onAsync(() => downloadFolder(a.path).catch((e: unknown) => { toast.error(e, 'Download'); }))}>Download .zip</Button>
                )}
              </Table.Td>
            )}
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

function Detail({ detail, reload }: { detail: ExperimentDetail; reload: () => void }) {
  const api = useApi();
  const toast = useToast();
  const store = useJobStore();
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [sweeping, setSweeping] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [rerunning, setRerunning] = useState(false);
  const [resuming, setResuming] = useState(false);
  const [showDetails, setShowDetails] = useState(false);

  async function update(patch: { name?: string; notes?: string; tags?: string[]; starred?: boolean; pinned?: boolean }, what: string) {
    try {
      await api.call('history.update', { id: detail.id, ...patch });
      reload();
    } catch (e) {
      toast.error(e, `Saving ${what}`);
      throw e;
    }
  }

  async function remove() {
    setDeleting(true);
    try {
      await api.call('history.delete', { id: detail.id });
      toast.show({ title: 'Deleted', message: `Experiment #${detail.id} was deleted.`, color: 'green' });
      navigate(href.history());
    } catch (e) {
      toast.error(e, 'Delete');
      setDeleting(false);
      setConfirmDelete(false);
    }
  }

  async function rerun() {
    setRerunning(true);
    try {
      const started = await api.call('jobs.start', { recipe: withoutResume(detail.recipe), name: `${detail.name} (re-run)`.slice(0, 200) });
      store.track(started.jobId, started.experimentId);
      navigate(wizardHref(detail.kind, detail.modelPath, started) ?? href.evaluate('', started));
    } catch (e) {
      toast.error(e, 'Re-run');
      setRerunning(false);
    }
  }

  // An interrupted or cancelled training run continues, in a new job, from its newest checkpoint (the same curve).
  const resume = planResume(detail);
  async function resumeRun() {
    if (!resume.ok) return;
    setResuming(true);
    try {
      const started = await api.call('jobs.start', { recipe: resume.recipe, name: `${detail.name.replace(/ \(resumed\)$/, '')} (resumed)`.slice(0, 200) });
      store.track(started.jobId, started.experimentId);
      navigate(wizardHref(detail.kind, detail.modelPath, started) ?? href.evaluate('', started));
    } catch (e) {
      toast.error(e, 'Resume');
      setResuming(false);
    }
  }

  const active = detail.status === 'running' || detail.status === 'queued';
  const sensitivity = sensitivityOf(detail.details);
  const curve = storedCurve(detail.details);
  // The wizard of this kind of job, attached to it: its comparison, and "again" opens it pre-filled with this recipe.
  const wizard = wizardHref(detail.kind, detail.modelPath, { experimentId: detail.id });
  // Edit and re-run: the same wizard with every field set from this recipe, attached to no job.
  const edit = editHref(detail.kind, detail.modelPath, detail.id);

  return (
    <Stack gap="md" data-testid="history-detail" data-id={detail.id}>
      <Group justify="space-between" align="flex-start" wrap="wrap">
        {/* The name keeps a readable width; the actions wrap onto more rows instead of squeezing it. */}
        <Stack gap={4} style={{ minWidth: 260, flex: '1 1 260px' }}>
          <EditableName detail={detail} onSave={(name) => update({ name }, 'the name')} />
          <Group gap="xs">
            <StatusBadge status={detail.status} testId="detail-status" />
            <Text size="sm" c="dimmed">#{detail.id} · {detail.kind}</Text>
            <ActionIcon variant="subtle" color={detail.starred ? 'yellow' : 'gray'} aria-label={detail.starred ? 'Unstar' : 'Star'} title={detail.starred ? 'Unstar' : 'Star'}
              aria-pressed={detail.starred} data-testid="detail-star"
              onClick={() => { void update({ starred: !detail.starred }, 'the star').catch(() => undefined); }}>
              {detail.starred ? <IconStarFilled size={16} /> : <IconStar size={16} />}
            </ActionIcon>
            <ActionIcon variant="subtle" color={detail.pinned ? 'blue' : 'gray'} aria-label={detail.pinned ? 'Unpin' : 'Pin'} title={detail.pinned ? 'Unpin' : 'Pin to the top of the history'}
              aria-pressed={detail.pinned} data-testid="detail-pin"
              onClick={() => { void update({ pinned: !detail.pinned }, 'the pin').catch(() => undefined); }}>
              {detail.pinned ? <IconPinFilled size={16} /> : <IconPin size={16} />}
            </ActionIcon>
            {detail.groupId !== undefined && (
              <Anchor href={href.sweep(detail.groupId)} size="sm" data-testid="detail-sweep-link">part of sweep #{detail.groupId}</Anchor>
            )}
          </Group>
        </Stack>
        <Group gap="xs" wrap="wrap" justify="flex-end" style={{ flex: '0 1 auto' }}>
          <Button component="a" href={href.history()} variant="default" leftSection={<IconArrowLeft size={16} />}>History</Button>
          {wizard && (
            <Button component="a" href={wizard} variant="light" leftSection={<IconArrowsLeftRight size={16} />} title="This run's result beside its original, in its wizard" data-testid="detail-compare">Result vs original</Button>
          )}
          {detail.status === 'done' && <CompareWithButton detail={detail} />}
          {detail.status === 'done' && <ParetoButton detail={detail} />}
          {resume.ok && (
            <Button leftSection={<IconPlayerTrackNext size={16} />} onClick={onAsync(resumeRun)} loading={resuming} data-testid="detail-resume">Resume</Button>
          )}
          <Button variant="light" leftSection={<IconRefresh size={16} />} onClick={onAsync(rerun)} loading={rerunning} disabled={active} data-testid="detail-rerun">Re-run</Button>
          {edit && (
            <Button component="a" href={edit} variant="light" leftSection={<IconEdit size={16} />} data-testid="detail-edit-rerun">Edit and re-run</Button>
          )}
          <Button variant="light" leftSection={<IconGridDots size={16} />} onClick={() => setSweeping(true)} data-testid="detail-sweep">Sweep…</Button>
          <ReportButton ids={[detail.id]} />
          {!active && <ExportBundleButton ids={[detail.id]} testId="detail-export-bundle" />}
          <Button color="red" variant="light" leftSection={<IconTrash size={16} />} onClick={() => setConfirmDelete(true)} disabled={active} data-testid="detail-delete">Delete</Button>
        </Group>
      </Group>

      {sweeping && <SweepDialog opened onClose={() => setSweeping(false)} recipe={withoutResume(detail.recipe)} />}
      {detail.error && <ErrorAlert error={detail.error} testId="detail-error" />}

      <SimpleGrid cols={{ base: 2, md: 4 }} spacing="sm">
        <StatCard label="Created" value={formatDateTime(detail.created)} testId="detail-created" />
        <StatCard label="Finished" value={formatDateTime(detail.finished)} testId="detail-finished" />
        <StatCard label="Duration" value={formatDuration(detail.durationMs)} testId="detail-duration" />
        <StatCard label="Model size" value={formatBytes(detail.modelBytes)} testId="detail-model-size" />
      </SimpleGrid>

      <Section title="Model" testId="detail-model">
        <Stack gap={4}>
          <Group gap="xs" wrap="nowrap"><Text size="sm" c="dimmed" w={70}>Path</Text><Anchor href={href.model(detail.modelPath)} size="sm" ff="monospace" className="wrap-anywhere" data-testid="detail-model-path">{detail.modelPath}</Anchor></Group>
          <Group gap="xs" wrap="nowrap"><Text size="sm" c="dimmed" w={70}>SHA-256</Text><Text size="sm" ff="monospace" className="wrap-anywhere" data-testid="detail-model-sha256">{detail.modelSha256 ?? '—'}</Text></Group>
        </Stack>
      </Section>

      <Section title="Lineage" testId="detail-lineage"><LineageTree id={detail.id} /></Section>

      <Section title="Metrics" testId="detail-metrics"><MetricsTable metrics={detail.metrics} /></Section>

      {hasGgufComparison(detail) && <Section title="GGUF in llama.cpp" testId="detail-gguf"><GgufPanel detail={detail} /></Section>}

      {sensitivity && sensitivity.rows.length > 0 && (
        <Section title="Per-layer sensitivity" testId="detail-sensitivity">
          <SensitivityChart rows={sensitivity.rows} baseline={sensitivity.baseline} bits={sensitivity.bits} />
        </Section>
      )}

      {curve && curve.length > 0 && <TrainCurves curve={curve} />}

      <div className="two-columns">
        <Section title="Recipe" testId="detail-recipe-section"><JsonBlock value={detail.recipe} testId="detail-recipe" /></Section>
        <Stack gap="md">
          <Section title="Notes"><Notes detail={detail} onSave={(notes) => update({ notes }, 'the notes')} /></Section>
          <Section title="Tags">
            <TagsInput value={detail.tags} onChange={(tags) => { void update({ tags }, 'the tags').catch(() => undefined); }} maxTags={20}
              placeholder="Add a tag and press Enter" aria-label="Tags" data-testid="detail-tags" />
          </Section>
        </Stack>
      </div>

      <Section title="Artefacts"><Artefacts detail={detail} /></Section>

      <Paper withBorder radius="md" p="md">
        <Button variant="subtle" px={0} leftSection={showDetails ? <IconChevronDown size={16} /> : <IconChevronRight size={16} />}
          onClick={() => setShowDetails((s) => !s)} data-testid="detail-details-toggle">
          Details ({Object.keys(detail.details).length} entries)
        </Button>
        <Collapse expanded={showDetails}>
          <JsonBlock value={detail.details} testId="detail-details" maxHeight={520} />
        </Collapse>
      </Paper>

      <Section title="Log"><JobLog lines={detail.log} height={300} testId="detail-log" /></Section>

      <Modal opened={confirmDelete} onClose={() => setConfirmDelete(false)} title="Delete this experiment?" centered>
        <Text size="sm">Experiment #{detail.id} “{detail.name}” with its metrics, log and notes will be removed from the history. This cannot be undone.</Text>
        <Group justify="flex-end" mt="md">
          <Button variant="default" onClick={() => setConfirmDelete(false)} data-testid="detail-delete-cancel">Keep</Button>
          <Button color="red" onClick={onAsync(remove)} loading={deleting} data-testid="detail-delete-confirm">Delete</Button>
        </Group>
      </Modal>
    </Stack>
  );
}

export function HistoryDetailPage({ id }: { id: number }) {
  const detail = useCall('history.get', { id });
  useEvent('history.changed', (e) => { if (e.experimentId === null || e.experimentId === id) detail.reload({ quiet: true }); });
  return (
    <Stack gap="md">
      {detail.loading && !detail.data && <Stack gap="md"><Skeleton h={48} w="50%" /><Skeleton h={90} /><Skeleton h={240} /></Stack>}
      {detail.error && (
        <ErrorAlert error={detail.error} testId="detail-load-error">
          <Anchor href={href.history()} size="sm" mt="xs" display="block">Back to the history</Anchor>
        </ErrorAlert>
      )}
      {detail.data && <Detail detail={detail.data} reload={() => detail.reload({ quiet: true })} />}
    </Stack>
  );
}
