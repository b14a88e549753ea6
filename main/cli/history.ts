/** `whittle history list | show | delete`: the same history the desktop app shows. */
import type { CallParams, ExperimentDetail, ExperimentStatus, ExperimentSummary } from '../../preload/contract.ts';
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

/** The name with its marks: ★ starred, ↑ pinned (pinned experiments are listed first). */
function markedName(s: ExperimentSummary): string {
  const marks = `${s.pinned ? '↑' : ''}${s.starred ? '★' : ''}`;
  return marks ? `${marks} ${s.name}` : s.name;
}

/** `filtered`: the list was narrowed by a search or a filter (an empty answer then says nothing matched). */
export function listText(items: readonly ExperimentSummary[], total: number, filtered = false, offset = 0): string {
  if (items.length === 0) {
    if (total > 0) return `No experiments after the first ${offset} of ${total}; use a smaller --offset.\n`;
    return filtered ? 'No experiment matches.\n' : 'No experiments yet. Start one with `whittle eval` or `whittle run`.\n';
  }
  const withTags = items.some((s) => s.tags.length > 0);
  const rows = items.map((s) => [String(s.id), shortDate(s.created), s.status, s.kind, markedName(s), ...(withTags ? [s.tags.join(', ')] : []), headlineText(s)]);
  const header = ['id', 'created', 'status', 'kind', 'name', ...(withTags ? ['tags'] : []), 'headline'];
  const table = renderTable([header, ...rows], { header: true, rightAlign: [0] });
  const shown = offset > 0 ? `${offset + 1}–${offset + items.length}` : String(items.length);
  const more = total > items.length ? `\n${shown} of ${total} shown; use --limit and --offset for other pages, --search, --tag or --kind to narrow.\n` : '';
  return `${table}${more}`;
}

/** The history.list call for `whittle history list`'s options. */
export function listParams(o: OptionValues): CallParams<'history.list'> {
  const params: CallParams<'history.list'> = {};
  if (o.search !== undefined) {
    params.search = String(o.search);
    params.sort = 'relevance';
  }
  if (o.tag !== undefined) params.tags = o.tag as string[];
  if (o.kind !== undefined) params.kind = String(o.kind);
  if (o.status !== undefined) params.status = o.status as ExperimentStatus;
  if (o.starred === true) params.starred = true;
  if (o.limit !== undefined) params.limit = Number(o.limit);
  if (o.offset !== undefined) params.offset = Number(o.offset);
  return params;
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
      const params = listParams(o);
      const result = await session.call('history.list', params);
      const filtered = !!(params.search?.trim() || params.tags?.length || params.kind || params.status || params.starred);
      out.result(result, listText(result.items, result.total, filtered, params.offset ?? 0));
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
