/** `whittle report <id…> --format html|md|csv [--out FILE]`: a report of one experiment or a comparison. */
import path from 'node:path';
import { formatBytes } from '../../preload/units.ts';
import { UsageError, type OptionValues } from './args.ts';
import { parseId } from './history.ts';
import { EXIT_OK, type Output } from './output.ts';
import { openSession } from './session.ts';

/** The ids of a command that takes several (`<id…>`), each checked, none twice. */
export function parseIds(positionals: readonly string[]): number[] {
  const ids = positionals.map(parseId);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice !== undefined) throw new UsageError(`Experiment ${twice} is named twice; name each experiment once.`);
  return ids;
}

export async function runReport(positionals: string[], o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  const ids = parseIds(positionals);
  if (ids.length > 8) throw new UsageError(`A report holds at most 8 experiments; ${ids.length} were named.`);
  const format = (o.format ?? 'html') as 'html' | 'md' | 'csv';
  const file = o.out === undefined ? undefined : path.resolve(String(o.out));
  const session = await openSession({ home, transport: 'memory', needsEngine: false, out });
  try {
    const report = await session.call('reports.export', { ids, format, ...(file ? { path: file } : {}) });
    if (report.path) out.result(report, `Wrote the ${format.toUpperCase()} report of ${ids.length === 1 ? `experiment ${ids[0]}` : `experiments ${ids.join(', ')}`} to ${report.path} (${formatBytes(report.bytes)}).`);
    else out.result(report, report.content ?? '');
    return EXIT_OK;
  } finally {
    await session.close();
  }
}
