/**
 * History bundles from the app: "Export bundle…" writes experiments (recipes, metrics, logs, notes, tags,
 * lineage, optionally their output folders) to one file (history.export); "Import bundle…" adds the
 * experiments of such a file to this history (history.import). Paths are on the machine running Whittle:
 * the desktop app offers its file dialog, serve mode takes a path inside the server's folders, and there
 * the written bundle can be downloaded (as a zip holding it).
 */
import { Anchor, Button, Checkbox, Group, Modal, Stack, Text, TextInput } from '@mantine/core';
import { IconPackageExport, IconPackageImport } from '@tabler/icons-react';
import { useState } from 'react';
import type { BundleExported } from '../../preload/contract.ts';
import { transport } from '../bridge/index.ts';
import { useApi } from '../hooks/useApi.ts';
import { useToast } from '../hooks/useToast.ts';
import { onAsync } from '../lib/async-handler.ts';
import { downloadFolder } from '../lib/download.ts';
import { formatBytes } from '../lib/format.ts';
import { navigate } from '../hooks/useRoute.ts';
import { href } from '../lib/route.ts';
import { PathInput } from './PathInput.tsx';

const BUNDLE_EXTENSION = '.whittle';

/** `<home>/bundles/whittle-<n>-experiments-<yyyy-mm-dd-hhmm>.whittle` on the machine running Whittle. */
export function defaultBundlePath(home: string, platform: string, count: number, now = new Date()): string {
  const sep = platform === 'win32' ? '\\' : '/';
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}`;
  return `${home.replace(/[\\/]+$/, '')}${sep}bundles${sep}whittle-${count}-experiment${count === 1 ? '' : 's'}-${stamp}${BUNDLE_EXTENSION}`;
}

/** "Export bundle…": the experiments `ids` to a bundle file. */
export function ExportBundleButton({ ids, size = 'sm', testId = 'bundle-export' }: { ids: readonly number[]; size?: 'xs' | 'sm'; testId?: string }) {
  const api = useApi();
  const toast = useToast();
  const [open, setOpen] = useState(false);
  const [file, setFile] = useState('');
  const [withOutputs, setWithOutputs] = useState(false);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<BundleExported | null>(null);
  const serve = transport() === 'serve';

  async function start() {
    setDone(null);
    setOpen(true);
    if (file) return;
    try {
      const info = await api.call('app.info', {});
      setFile((f) => f || defaultBundlePath(info.home, info.platform, ids.length));
    } catch (e) {
      toast.error(e, 'Export bundle');
    }
  }

  async function write() {
    setBusy(true);
    try {
      const exported = await api.call('history.export', { ids: [...ids], path: file.trim(), withOutputs });
      setDone(exported);
      toast.show({ title: 'Bundle written', message: `${exported.experiments} experiment${exported.experiments === 1 ? '' : 's'} in ${exported.path}.`, color: 'green' });
    } catch (e) {
      toast.error(e, 'Export bundle');
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <Button size={size} variant="light" leftSection={<IconPackageExport size={16} />} onClick={onAsync(start)} disabled={ids.length === 0} data-testid={testId}>
        Export bundle…
      </Button>
      <Modal opened={open} onClose={() => setOpen(false)} title={`Export ${ids.length} experiment${ids.length === 1 ? '' : 's'} as a bundle`} centered size="lg">
        <Stack gap="sm">
          <Text size="sm" c="dimmed">
            One file with the recipes, metrics, logs, notes, tags and lineage, to import into another Whittle with “Import bundle…” or <code>whittle history import</code>.
          </Text>
          <TextInput label="Bundle file" description={serve ? 'On the machine running Whittle, inside the folders the server may use.' : 'Made with its folder when missing.'}
            value={file} onChange={(e) => setFile(e.currentTarget.value)} spellCheck={false} autoComplete="off" classNames={{ input: 'mono-input' }} data-testid="bundle-export-path" />
          <Checkbox label="Include the output folders (the compressed models; the file can get large)" checked={withOutputs}
            onChange={(e) => setWithOutputs(e.currentTarget.checked)} data-testid="bundle-export-outputs" />
          {done && (
            <Text size="sm" data-testid="bundle-export-done">
              Wrote {done.experiments} experiment{done.experiments === 1 ? '' : 's'}{done.outputFiles > 0 ? ` and ${done.outputFiles} output files` : ''} ({formatBytes(done.bytes)}) to{' '}
              <Text span ff="monospace" className="wrap-anywhere" data-testid="bundle-export-written">{done.path}</Text>.
              {serve && (
                <> <Anchor component="button" size="sm" onClick={onAsync(() => downloadFolder(done.path).catch((e: unknown) => { toast.error(e, 'Download'); }))} data-testid="bundle-export-download">Download it (.zip)</Anchor></>
              )}
            </Text>
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setOpen(false)} data-testid="bundle-export-close">{done ? 'Close' : 'Cancel'}</Button>
            <Button onClick={onAsync(write)} loading={busy} disabled={!file.trim()} data-testid="bundle-export-write">Export</Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}

/** "Import bundle…": a bundle file's experiments into this history; opens the first one imported. */
export function ImportBundleButton({ size = 'sm' }: { size?: 'xs' | 'sm' }) {
  const api = useApi();
  const toast = useToast();
  const [open, setOpen] = useState(false);
  const [file, setFile] = useState('');
  const [busy, setBusy] = useState(false);
  const serve = transport() === 'serve';

  async function read() {
    setBusy(true);
    try {
      const imported = await api.call('history.import', { path: file.trim() });
      const outputs = imported.outputs.length > 0 ? `, ${imported.outputs.length} output folder${imported.outputs.length === 1 ? '' : 's'} unpacked` : '';
      toast.show({ title: 'Bundle imported', message: `${imported.experiments} experiment${imported.experiments === 1 ? '' : 's'} added${outputs}.`, color: 'green' });
      setOpen(false);
      setFile('');
      const first = imported.ids[0];
      navigate(imported.ids.length === 1 && first ? href.historyDetail(first.to) : href.history());
    } catch (e) {
      toast.error(e, 'Import bundle');
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <Button size={size} variant="subtle" leftSection={<IconPackageImport size={16} />} onClick={() => setOpen(true)} data-testid="bundle-import">
        Import bundle…
      </Button>
      <Modal opened={open} onClose={() => setOpen(false)} title="Import a bundle" centered size="lg">
        <Stack gap="sm">
          <Text size="sm" c="dimmed">
            Experiments exported from another Whittle are added to this history with new ids; nothing changes if the file is damaged or not a bundle.
          </Text>
          <PathInput label="Bundle file" purpose="bundle" value={file} onChange={setFile} onEnter={() => { if (file.trim()) void read(); }}
            description={serve ? 'On the machine running Whittle, inside the folders the server may use.' : undefined}
            placeholder={`/path/to/experiments${BUNDLE_EXTENSION}`} testId="bundle-import-path" />
          <Group justify="flex-end">
            <Button variant="default" onClick={() => setOpen(false)}>Cancel</Button>
            <Button onClick={onAsync(read)} loading={busy} disabled={!file.trim()} data-testid="bundle-import-read">Import</Button>
          </Group>
        </Stack>
      </Modal>
    </>
  );
}
