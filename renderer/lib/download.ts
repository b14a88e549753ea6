/**
 * Downloads from the page: a text made here (a report) saved as a file, and in serve mode an output folder
 * fetched from the server as a zip (main/server/download.ts) through a one-use link, so the browser
 * streams it to disk.
 */
import { serveAuthToken } from '../bridge/index.ts';

const MIME: Record<string, string> = { html: 'text/html', md: 'text/markdown', csv: 'text/csv' };

/** Saves `content` as `fileName` through the browser's download (a blob link clicked once). */
export function saveText(content: string, fileName: string): void {
  const ext = fileName.split('.').pop() ?? '';
  const url = URL.createObjectURL(new Blob([content], { type: `${MIME[ext] ?? 'text/plain'};charset=utf-8` }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The download has its own copy once it started.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Serve mode: asks the server for a one-use link to the zip of `folder`, then follows it as a download. */
export async function downloadFolder(folder: string): Promise<void> {
  const token = serveAuthToken();
  if (!token) throw new Error('Open the URL printed by `whittle serve` again: this page has no access token.');
  const res = await fetch('/api/download', {
    method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ path: folder }),
  });
  const body = (await res.json().catch(() => ({}))) as { url?: string; fileName?: string; message?: string };
  if (!res.ok || !body.url) throw new Error(body.message ?? `The server refused the download (HTTP ${res.status}).`);
  const a = document.createElement('a');
  a.href = body.url;
  a.download = body.fileName ?? 'download.zip';
  document.body.appendChild(a);
  a.click();
  a.remove();
}
