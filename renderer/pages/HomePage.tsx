import { Alert, Anchor, Badge, Button, Card, Group, Paper, SegmentedControl, SimpleGrid, Skeleton, Stack, Text, TextInput, Title } from '@mantine/core';
import { IconChartBar, IconChartDots3, IconChartLine, IconDownload, IconDragDrop, IconFileDescription, IconFolderOpen, IconPlayerPlay, IconSchool, IconStack2 } from '@tabler/icons-react';
import { useRef, useState, type DragEvent, type ReactNode } from 'react';
import type { ErrorShape, ImportedModel, Sample } from '../../preload/contract.ts';
import { pathForDroppedFile, transport } from '../bridge/index.ts';
import { ErrorAlert } from '../components/ErrorAlert.tsx';
import { useApi } from '../hooks/useApi.ts';
import { useCall } from '../hooks/useCall.ts';
import { navigate } from '../hooks/useRoute.ts';
import { useToast } from '../hooks/useToast.ts';
import { baseName, formatBytes, formatCount, formatDateTime } from '../lib/format.ts';
import { href } from '../lib/route.ts';
import { onAsync } from '../lib/async-handler.ts';
import { toUiError } from '../lib/errors.ts';

/** A bordered panel that takes dropped files: `data-dragging` is set while something is dragged over it. */
function DropZone({ onDrop, testId, children }: { onDrop: (e: DragEvent) => void; testId: string; children: ReactNode }) {
  const [dragging, setDragging] = useState(false);
  return (
    <Paper
      withBorder
      p="lg"
      radius="md"
      className="drop-zone"
      data-dragging={dragging || undefined}
      onDragOver={(e) => { e.preventDefault(); setDragging(true); }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => { e.preventDefault(); setDragging(false); onDrop(e); }}
      data-testid={testId}
    >
      {children}
    </Paper>
  );
}

/** The settings of a typed path field: monospace, no spell check or autocomplete, filling the row. */
const pathFieldProps = {
  spellCheck: false,
  autoComplete: 'off',
  style: { flex: 1, minWidth: 0 },
  classNames: { input: 'mono-input' },
} as const;

function OpenModelPanel() {
  const api = useApi();
  const toast = useToast();
  const input = useRef<HTMLInputElement>(null);
  const [path, setPath] = useState('');
  const [note, setNote] = useState<{ color: 'yellow' | 'blue'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);

  function open() {
    const p = path.trim();
    if (!p) {
      setNote({ color: 'yellow', text: 'Type or paste the path of an .onnx file first.' });
      input.current?.focus();
      return;
    }
    navigate(href.model(p));
  }

  async function browse() {
    setBusy(true);
    try {
      const picked = await api.call('models.pickFile', { purpose: 'model' });
      if (picked.path) navigate(href.model(picked.path));
      else if (picked.reason) {
        setNote({ color: 'blue', text: picked.reason });
        input.current?.focus();
      }
    } catch (e) {
      toast.error(e, 'Browse');
    } finally {
      setBusy(false);
    }
  }

  function onDrop(e: DragEvent) {
    const file = e.dataTransfer.files[0];
    if (!file) return;
    const p = pathForDroppedFile(file);
    if (p) {
      navigate(href.model(p));
      return;
    }
    setNote({
      color: 'yellow',
      text: transport() === 'serve'
        ? `The browser does not tell web pages where "${file.name}" is on disk. Type or paste its full path instead.`
        : `Could not get the location of "${file.name}". Type or paste its full path instead.`,
    });
    input.current?.focus();
  }

  return (
    <DropZone onDrop={onDrop} testId="drop-zone">
      <Stack gap="sm">
        <Group gap="xs"><IconDragDrop size={20} /><Text fw={600}>Open a model</Text></Group>
        <Text size="sm" c="dimmed">Drop an .onnx file here, choose one, or type its path. Whittle reads it in place and changes nothing.</Text>
        <Group gap="xs" align="flex-start" wrap="nowrap">
          <TextInput
            ref={input}
            placeholder="/path/to/model.onnx"
            value={path}
            onChange={(e) => setPath(e.currentTarget.value)}
            onKeyDown={(e) => { if (e.key === 'Enter') open(); }}
            aria-label="Model path"
            {...pathFieldProps}
            data-testid="model-path-input"
          />
          <Button onClick={open} data-testid="open-model">Open</Button>
          <Button variant="default" leftSection={<IconFolderOpen size={16} />} onClick={onAsync(browse)} loading={busy} data-testid="browse-model">Browse…</Button>
        </Group>
        {note && <Alert color={note.color} variant="light" p="xs" data-testid="open-note">{note.text}</Alert>}
      </Stack>
    </DropZone>
  );
}

function ImportHfPanel() {
  const api = useApi();
  const [folder, setFolder] = useState('');
  const [dtype, setDtype] = useState<'fp32' | 'fp16'>('fp32');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorShape | null>(null);
  const [done, setDone] = useState<ImportedModel | null>(null);

  function onDrop(e: DragEvent) {
    const file = e.dataTransfer.files[0];
    const p = file ? pathForDroppedFile(file) : null;
    if (p) setFolder(p);
    else if (file) setError({ code: 'INVALID_INPUT', message: `The location of "${file.name}" is not known here. Type or paste the folder's full path instead.` });
  }

  async function run() {
    const p = folder.trim();
    if (!p) return;
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      setDone(await api.call('models.importHf', { folder: p, dtype }));
    } catch (e) {
      setError(toUiError(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <DropZone onDrop={onDrop} testId="import-hf">
      <Stack gap="sm">
        <Group gap="xs"><IconDownload size={20} /><Text fw={600}>Import a Hugging Face folder</Text></Group>
        <Text size="sm" c="dimmed">A folder with config.json, *.safetensors and tokenizer.json (Llama, Mistral, Qwen2, Qwen3, SmolLM, GPT-2, BERT) becomes an ONNX model, decoders with a KV cache. Drop the folder here or type its path; no Python needed.</Text>
        <Group gap="xs" align="flex-start" wrap="nowrap">
          <TextInput
            placeholder="/path/to/hf-model-folder"
            value={folder}
            onChange={(e) => setFolder(e.currentTarget.value)}
            onKeyDown={(e) => { if (e.key === 'Enter') void run(); }}
            aria-label="Hugging Face folder"
            {...pathFieldProps}
            data-testid="import-hf-folder"
          />
          <SegmentedControl value={dtype} onChange={(v) => setDtype(v as 'fp32' | 'fp16')} data={['fp32', 'fp16']} aria-label="Weights dtype" />
          <Button onClick={onAsync(run)} loading={busy} disabled={!folder.trim()} data-testid="import-hf-run">Import</Button>
        </Group>
        {error && <ErrorAlert error={error} testId="import-hf-error" />}
        {done && (
          <Alert color="green" variant="light" p="xs" data-testid="import-hf-done">
            <Text size="sm">{done.modelType}, {formatCount(done.parameters)} parameters, {formatBytes(done.bytes)} in {done.seconds.toFixed(1)} s: <Text span ff="monospace">{done.modelPath}</Text></Text>
            <Group gap="xs" mt="xs">
              <Button component="a" href={href.model(done.modelPath)} size="compact-sm" variant="light">Open model</Button>
              <Button component="a" href={href.evaluate(done.modelPath)} size="compact-sm" variant="subtle">Evaluate</Button>
            </Group>
          </Alert>
        )}
      </Stack>
    </DropZone>
  );
}

function SampleCard({ sample }: { sample: Sample }) {
  return (
    <Card withBorder radius="md" padding="lg" data-testid="sample-card" data-sample-id={sample.id}>
      <Group justify="space-between" mb="xs" wrap="nowrap">
        <Text fw={700} data-testid="sample-name">{sample.name}</Text>
        <Badge variant="light">sample</Badge>
      </Group>
      <Text size="sm" c="dimmed" mb="md">{sample.description}</Text>
      <Group gap="xs">
        <Button component="a" href={href.model(sample.modelPath)} variant="light" leftSection={<IconFileDescription size={16} />} data-testid="open-sample">Open sample</Button>
        <Button component="a" href={href.evaluate(sample.modelPath)} leftSection={<IconPlayerPlay size={16} />} data-testid="evaluate-sample">Evaluate sample</Button>
        <Button component="a" href={href.quantize(sample.modelPath)} variant="light" color="grape" leftSection={<IconStack2 size={16} />} data-testid="quantize-sample">Quantize sample</Button>
        <Button component="a" href={href.prune(sample.modelPath)} variant="light" color="orange" leftSection={<IconChartDots3 size={16} />} data-testid="prune-sample">Prune sample</Button>
        <Button component="a" href={href.train(sample.modelPath)} variant="light" color="teal" leftSection={<IconChartLine size={16} />} data-testid="train-sample">Train sample</Button>
        <Button component="a" href={href.distill(sample.modelPath)} variant="light" color="indigo" leftSection={<IconSchool size={16} />} data-testid="distill-sample">Distil sample</Button>
      </Group>
    </Card>
  );
}

function SamplesSection() {
  const samples = useCall('samples.list', {});
  if (samples.loading) return <Skeleton h={140} radius="md" />;
  if (samples.error) return <ErrorAlert error={samples.error} testId="samples-error" />;
  if (!samples.data || samples.data.length === 0) return null;
  return (
    <Stack gap="sm">
      <Title order={3}>Try the bundled sample</Title>
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        {samples.data.map((s) => <SampleCard key={s.id} sample={s} />)}
      </SimpleGrid>
    </Stack>
  );
}

function RecentModels() {
  const recent = useCall('models.recent', {});
  return (
    <Stack gap="sm">
      <Title order={3}>Recent models</Title>
      {recent.loading && <Skeleton h={80} radius="md" />}
      {recent.error && <ErrorAlert error={recent.error} testId="recent-error" />}
      {recent.data && recent.data.length === 0 && (
        <Text size="sm" c="dimmed" data-testid="recent-empty">Models you open appear here.</Text>
      )}
      {recent.data && recent.data.length > 0 && (
        <Paper withBorder radius="md">
          {recent.data.map((m) => (
            <Group key={m.path} justify="space-between" px="md" py="xs" className={m.exists ? 'recent-row' : 'recent-row recent-missing'} wrap="nowrap"
              data-testid="recent-model" data-missing={m.exists ? undefined : 'true'}>
              <Stack gap={0} style={{ minWidth: 0 }}>
                {m.exists
                  ? <Anchor href={href.model(m.path)} fw={600} truncate>{baseName(m.path)}</Anchor>
                  : <Text fw={600} c="dimmed" truncate title="The file is no longer there">{baseName(m.path)}</Text>}
                <Text size="xs" c="dimmed" ff="monospace" truncate>{m.path}</Text>
              </Stack>
              <Group gap="xs" wrap="nowrap">
                {!m.exists && <Badge color="gray" variant="outline">missing</Badge>}
                <Text size="xs" c="dimmed" style={{ whiteSpace: 'nowrap' }}>{formatDateTime(m.lastOpened)}</Text>
                {m.exists && (
                  <Button component="a" href={href.evaluate(m.path)} size="compact-sm" variant="subtle" leftSection={<IconChartBar size={14} />}>Evaluate</Button>
                )}
              </Group>
            </Group>
          ))}
        </Paper>
      )}
    </Stack>
  );
}

export function HomePage() {
  return (
    <Stack gap="xl">
      <OpenModelPanel />
      <ImportHfPanel />
      <SamplesSection />
      <RecentModels />
    </Stack>
  );
}
