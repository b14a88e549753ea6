/**
 * `whittle sweep <recipe.json> --grid key=v1,v2 …`: one experiment per combination of the grid, in one
 * group, run one after another; the members' statuses and headline metrics at the end.
 * `whittle sweep --resume GROUP` queues again the combinations that did not finish.
 */
import path from 'node:path';
import type { EventMessage, JobFinished, SweepView } from '../../preload/contract.ts';
import { parseGridArguments } from '../../preload/sweep.ts';
import { UsageError, type OptionValues } from './args.ts';
import { formatMetric, renderTable } from './format.ts';
import { EXIT_FAILURE, EXIT_OK, type Output } from './output.ts';
import { readJsonFile, resolveRecipePaths } from './recipe-file.ts';
import { openSession, type Session } from './session.ts';
import { onStopSignals } from './signals.ts';

const gridValuesText = (m: SweepView['members'][number]): string[] => Object.values(m.assignment).map(String);

/** The group as a table: id, the grid's values, status and the headline metrics of each member. */
export function sweepText(view: SweepView): string {
  const keys = Object.keys(view.grid).map((k) => k.split('.').at(-1)!);
  const metricNames = [...new Set(view.members.flatMap((m) => m.headline.map((h) => h.name)))];
  const header = ['id', ...keys, 'status', ...metricNames.map((n) => n.replace(/_/g, ' '))];
  const rows = view.members.map((m) => [
    String(m.id), ...gridValuesText(m), m.status,
    ...metricNames.map((n) => { const h = m.headline.find((x) => x.name === n); return h ? formatMetric(h) : ''; }),
  ]);
  const counts = Object.entries(view.counts).map(([s, n]) => `${n} ${s}`).join(', ');
  const lines = [
    `Sweep ${view.id} · ${view.name} · ${view.size} combination${view.size === 1 ? '' : 's'} (${counts || 'no members'})`,
    '',
    renderTable([header, ...rows], { header: true, rightAlign: metricNames.map((_, i) => keys.length + 2 + i) }),
  ];
  if (view.remaining > 0) lines.push(`${view.remaining} combination${view.remaining === 1 ? ' has' : 's have'} not finished: whittle sweep --resume ${view.id}`);
  lines.push(`Compare them: whittle history compare ${view.members.filter((m) => m.status === 'done').map((m) => m.id).join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** Starts (or resumes) the sweep and waits for every queued job, reporting each as it finishes. */
async function runAndWait(session: Session, out: Output, begin: () => Promise<{ groupId: number; jobs: { jobId: string; experimentId: number }[] }>): Promise<SweepView> {
  const finished = new Map<string, JobFinished>();
  let waiting: Set<string> | null = null;
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => { done = resolve; });
  const unsubscribe = session.subscribe((event: EventMessage) => {
    if (event.channel !== 'job.finished') return;
    const f = event.payload as JobFinished;
    finished.set(f.jobId, f);
    if (waiting?.has(f.jobId)) {
      out.info(`[${[...waiting].filter((id) => finished.has(id)).length}/${waiting.size}] experiment ${f.experimentId} ${f.status}${f.error ? `: ${f.error.message}` : ''}`);
      if ([...waiting].every((id) => finished.has(id))) done();
    }
  });
  let jobIds: string[] = [];
  const signals = onStopSignals(() => {
    out.warn('cancelling the sweep… (Ctrl-C again to quit at once)');
    for (const jobId of jobIds) void session.call('jobs.cancel', { jobId }).catch(() => {});
  }, () => {
    out.warn('stopped without waiting for the engine.');
    process.exit(EXIT_FAILURE);
  });
  try {
    const started = await begin();
    jobIds = started.jobs.map((j) => j.jobId);
    out.info(started.jobs.length === 0
      ? `sweep ${started.groupId}: every combination is done, queued or running; nothing to start`
      : `sweep ${started.groupId}: ${started.jobs.length} experiment${started.jobs.length === 1 ? '' : 's'} queued (${started.jobs.map((j) => j.experimentId).join(', ')})`);
    waiting = new Set(jobIds);
    if (signals.requested) for (const jobId of jobIds) void session.call('jobs.cancel', { jobId }).catch(() => {});
    if (jobIds.every((id) => finished.has(id))) done();
    await all;
    return await session.call('sweeps.get', { id: started.groupId });
  } finally {
    unsubscribe();
    signals.dispose();
  }
}

export async function runSweep(positionals: string[], o: OptionValues, out: Output, home: string | undefined): Promise<number> {
  const resume = o.resume as number | undefined;
  const grids = (o.grid as string[] | undefined) ?? [];
  let begin: (session: Session) => Promise<{ groupId: number; jobs: { jobId: string; experimentId: number }[] }>;
  if (resume !== undefined) {
    if (positionals.length > 0 || grids.length > 0 || o.name !== undefined) {
      throw new UsageError('--resume GROUP runs the group\'s own recipe and grid: give no recipe file, --grid or --name with it.');
    }
    begin = (session) => session.call('sweeps.resume', { id: resume });
  } else {
    if (positionals.length === 0) throw new UsageError('whittle sweep needs a recipe file and at least one --grid KEY=V1,V2.', 'Usage: whittle sweep <recipe.json> --grid steps.0.bits=4,8 [--grid …]');
    if (grids.length === 0) throw new UsageError('whittle sweep needs at least one --grid KEY=V1,V2 (for example --grid steps.0.bits=4,8).');
    let grid;
    try {
      grid = parseGridArguments(grids);
    } catch (e) {
      throw new UsageError(`--grid ${(e as Error).message}.`);
    }
    const file = path.resolve(positionals[0]);
    const { recipe, changed } = resolveRecipePaths(readJsonFile(file, 'recipe file'), path.dirname(file));
    if (changed.length) out.info(`paths read relative to the recipe's folder: ${changed.join(', ')}`);
    const name = o.name as string | undefined;
    begin = (session) => session.call('sweeps.start', { recipe, grid, ...(name ? { name } : {}) });
  }

  const session = await openSession({ home, transport: 'memory', needsEngine: true, out });
  try {
    const view = await runAndWait(session, out, () => begin(session));
    out.result(view, sweepText(view));
    return view.remaining === 0 ? EXIT_OK : EXIT_FAILURE;
  } finally {
    await session.close();
  }
}
