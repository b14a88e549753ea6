/** `whittle history list | show | delete`: the same history the desktop app shows. */
import type { ExperimentDetail, ExperimentStatus, ExperimentSummary } from '../../preload/contract.ts';
import { WhittleError } from '../engine/errors.ts';
import { UsageError, type OptionValues } from './args.ts';
import { formatBytes, formatDuration, formatMetric, metricLabel, renderFacts, renderTable, shortDate } from './format.ts';
import { metricsTable } from './experiment.ts';
import { EXIT_OK, type Output } from './output.ts';
import { openSession } from './session.ts';

export function parseId(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`"${text}" is not an experiment id; ids are whole numbers from 1 (see \`whittle history list\`).`);
  }
  return Number(text);
}

function headlineText(s: ExperimentSummary): string {
  return s.headline.map((m) => `${metricLabel(m.name)} ${formatMetric(m)}`).join(' · ');
}

export function listText(items: readonly ExperimentSummary[], total: number): string {
  if (items.length === 0) return total === 0 ? 'No experiments yet. Start one with `whittle eval` or `whittle run`.\n' : `None of the ${total} experiments match.\n`;
  const rows = items.map((s) => [String(s.id), shortDate(s.created), s.status, s.kind, s.name, headlineText(s)]);
  const table = renderTable([['id', 'created', 'status', 'kind', 'name', 'headline'], ...rows], { header: true, rightAlign: [0] });
  const more = total > items.length ? `\n${items.length} of ${total} shown; use --limit or --search to see others.\n` : '';
  return `${table}${more}`;
}

export function detailText(e: ExperimentDetail): string {
  const facts: [string, string][] = [
    ['experiment', String(e.id)],
    ['name', e.name],
    ['kind', e.kind],
    ['status', e.status],
    ['created', shortDate(e.created)],
    ['finished', shortDate(e.finished)],
    ['duration', e.durationMs !== null ? formatDuration(e.durationMs / 1000) : '—'],
    ['model', e.modelPath],
    ['model size', formatBytes(e.modelBytes)],
  ];
  if (e.modelSha256) facts.push(['model sha256', e.modelSha256]);
  if (e.tags.length) facts.push(['tags', e.tags.join(', ')]);
  const parts = [renderFacts(facts)];
  if (e.error) parts.push(`error (${e.error.code}): ${e.error.message}\n`);
  if (e.metrics.length) parts.push(metricsTable(e.metrics));
  if (e.artefacts.length) parts.push(renderTable(e.artefacts.map((a) => [a.kind, a.path, formatBytes(a.bytes)])));
  if (e.notes) parts.push(`notes:\n${e.notes}\n`);
  parts.push(`recipe:\n${JSON.stringify(e.recipe, null, 2)}\n`);
  if (e.log.length) {
    const tail = e.log.slice(-15);
    const skipped = e.log.length - tail.length;
    parts.push(`log${skipped ? ` (last ${tail.length} of ${e.log.length} lines)` : ''}:\n${tail.map((l) => `  ${l.time.slice(11, 19)} ${l.level.padEnd(5)} ${l.text}`).join('\n')}\n`);
  }
  return parts.join('\n');
}

export async function runHistory(sub: 'list' | 'show' | 'delete', positionals: string[], o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  const id = sub === 'list' ? 0 : parseId(positionals[0]);
  const session = await openSession({ home, transport: 'memory', needsEngine: false, out });
  try {
    if (sub === 'list') {
      const params: { search?: string; status?: ExperimentStatus; limit?: number } = {};
      if (o.search !== undefined) params.search = String(o.search);
      if (o.status !== undefined) params.status = o.status as ExperimentStatus;
      if (o.limit !== undefined) params.limit = Number(o.limit);
      const result = await session.call('history.list', params);
      out.result(result, listText(result.items, result.total));
    } else if (sub === 'show') {
      const detail = await session.call('history.get', { id });
      out.result(detail, detailText(detail));
    } else {
      const { deleted } = await session.call('history.delete', { id });
      if (!deleted) throw new WhittleError('NOT_FOUND', `There is no experiment ${id} in the history.`, { id });
      out.result({ deleted: true, id }, `Deleted experiment ${id}.`);
    }
    return EXIT_OK;
  } finally {
    await session.close();
  }
}
