/**
 * Reports of one experiment or a comparison of several: self-contained HTML (inline CSS and SVG charts,
 * nothing fetched), Markdown, or CSV. `renderReport` is pure; `exportReport` reads the history and writes
 * the file (through a temporary file, so a reader never sees half a report).
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExperimentDetail, ExportedReport, LineageTree } from '../../../preload/contract.ts';
import { WhittleError } from '../../engine/errors.ts';
import { renderCsv } from './csv.ts';
import { renderHtml } from './html.ts';
import { renderMarkdown } from './markdown.ts';
import { reportData, type ReportOptions } from './model.ts';

export type ReportFormat = 'html' | 'md' | 'csv';
export const REPORT_FORMATS: readonly ReportFormat[] = ['html', 'md', 'csv'];
export const REPORT_MAX = 8;

export const REPORT_MIME: Record<ReportFormat, string> = { html: 'text/html', md: 'text/markdown', csv: 'text/csv' };

export { reportData, type ReportData, type ReportOptions } from './model.ts';

export function renderReport(details: readonly ExperimentDetail[], format: ReportFormat, options: ReportOptions = {}): string {
  if (details.length === 0) throw new WhittleError('INVALID_INPUT', 'A report needs at least one experiment. Name one or more experiment ids.');
  if (format === 'csv') return renderCsv(details);
  const data = reportData(details, options);
  return format === 'html' ? renderHtml(data) : renderMarkdown(data);
}

/** `whittle-12.html`, `whittle-12-14-15.md`. */
export function reportFileName(ids: readonly number[], format: ReportFormat): string {
  return `whittle-${ids.join('-')}.${format}`;
}

/** What the report reads from the history. */
export interface ReportHistory {
  get(id: number): ExperimentDetail;
  lineage(id: number): LineageTree;
}

/**
 * The report of experiments `ids` (one, or 2–8 compared against `baseline`), written to `file` when given,
 * else returned as text.
 */
export async function exportReport(
  history: ReportHistory, ids: readonly number[], format: ReportFormat, file: string | null, options: Omit<ReportOptions, 'lineage'> = {},
): Promise<ExportedReport> {
  if (ids.length > REPORT_MAX) throw new WhittleError('INVALID_INPUT', `A report holds at most ${REPORT_MAX} experiments; ${ids.length} were named.`, { ids });
  const details = ids.map((id) => history.get(id));
  const lineage = ids.length === 1 ? history.lineage(ids[0]) : null;
  const content = renderReport(details, format, { ...options, lineage });
  const bytes = Buffer.byteLength(content);
  const fileName = reportFileName(ids, format);
  if (file === null) return { path: null, fileName, format, bytes, content };
  const target = path.resolve(file);
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}`);
  try {
    await writeFile(tmp, content);
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new WhittleError('IO', `Whittle could not write the report to ${target} (${(e as Error).message}). Choose another file or folder.`, { path: target }, { cause: e });
  }
  return { path: target, fileName, format, bytes, content: null };
}
