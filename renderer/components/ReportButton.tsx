/**
 * "Report": the report of one experiment or of a comparison (reports.export) as self-contained HTML,
 * Markdown or CSV, saved through the browser's download.
 */
import { Button, Menu } from '@mantine/core';
import { IconChevronDown, IconFileDownload } from '@tabler/icons-react';
import { useState } from 'react';
import { useApi } from '../hooks/useApi.ts';
import { useToast } from '../hooks/useToast.ts';
import { onAsync } from '../lib/async-handler.ts';
import { saveText } from '../lib/download.ts';

const FORMATS = [
  { format: 'html', label: 'HTML (charts, opens offline)' },
  { format: 'md', label: 'Markdown' },
  { format: 'csv', label: 'CSV (metrics)' },
] as const;

export function ReportButton({ ids, baseline, size = 'sm' }: { ids: readonly number[]; baseline?: number | null; size?: 'xs' | 'sm' }) {
  const api = useApi();
  const toast = useToast();
  const [busy, setBusy] = useState(false);

  async function save(format: 'html' | 'md' | 'csv') {
    setBusy(true);
    try {
      const report = await api.call('reports.export', { ids: [...ids], format, ...(baseline ? { baseline } : {}) });
      saveText(report.content ?? '', report.fileName);
      toast.show({ title: 'Report saved', message: `${report.fileName} went to your downloads.`, color: 'green' });
    } catch (e) {
      toast.error(e, 'Report');
    } finally {
      setBusy(false);
    }
  }

  return (
    <Menu position="bottom-end" withinPortal>
      <Menu.Target>
        <Button variant="light" size={size} loading={busy} leftSection={<IconFileDownload size={16} />} rightSection={<IconChevronDown size={14} />} data-testid="report-button">
          Report
        </Button>
      </Menu.Target>
      <Menu.Dropdown>
        {FORMATS.map((f) => (
          <Menu.Item key={f.format} onClick={onAsync(() => save(f.format))} data-testid={`report-${f.format}`}>{f.label}</Menu.Item>
        ))}
      </Menu.Dropdown>
    </Menu>
  );
}
