/**
 * Runs one recipe through the job system and waits for it: progress on a live stderr line (terminals
 * only), log lines on stderr, Ctrl-C cancels. Returns the finished experiment as the history records it.
 *
 * Ctrl-C (or SIGTERM): the first one asks the job to cancel and waits for the engine to stop; a second
 * one exits at once.
 */
import type { EventMessage, ExperimentDetail, JobFinished, JobProgress } from '../../preload/contract.ts';
import { formatDuration } from './format.ts';
import { EXIT_FAILURE, type Output } from './output.ts';
import type { Session } from './session.ts';
import { onStopSignals } from './signals.ts';

export interface JobOutcome {
  jobId: string;
  experimentId: number;
  finished: JobFinished;
  experiment: ExperimentDetail;
}

/**
 * The live line: the whole job's percent and time left (one bar for the job), then the current phase
 * with its own count. `startedAt` is when the job started (for events without a whole-job estimate).
 */
export function progressText(p: JobProgress, startedAt: number, now = Date.now()): string {
  const fraction = p.overall ?? (p.total > 0 ? Math.min(1, p.done / p.total) : 0);
  const known = p.overall !== undefined || p.total > 0;
  const percent = known ? `${(fraction * 100).toFixed(0).padStart(3)}%` : '   …';
  let eta = p.etaSeconds;
  if (eta === null && fraction > 0.02 && fraction < 1) eta = ((now - startedAt) / 1000) * (1 - fraction) / fraction;
  const etaText = eta !== null && fraction < 1 ? `  ETA ${formatDuration(eta)}` : '';
  const counts = p.total > 0 ? `  ${p.done}/${p.total}` : '';
  return `${percent}  ${p.phase.padEnd(20)}${counts}${etaText}${p.message ? `  ${p.message}` : ''}`;
}

export async function runJob(session: Session, out: Output, recipe: unknown, name?: string): Promise<JobOutcome> {
  let jobId: string | null = null;
  const early: EventMessage[] = [];
  let resolveFinished!: (f: JobFinished) => void;
  const finished = new Promise<JobFinished>((resolve) => { resolveFinished = resolve; });
  const startedAt = Date.now();
  let lastPhase = '';

  const handle = (event: EventMessage): void => {
    const payload = event.payload as { jobId?: string };
    if (payload.jobId !== jobId) return;
    switch (event.channel) {
      case 'job.progress': {
        const p = event.payload as JobProgress;
        if (p.phase !== lastPhase) {
          lastPhase = p.phase;
          if (!out.live) out.info(`· ${p.phase}${p.message ? `: ${p.message}` : ''}`);
        }
        out.status(progressText(p, startedAt));
        break;
      }
      case 'job.log': {
        const line = event.payload as EventMessage<'job.log'>['payload'];
        if (line.level === 'debug') break;
        if (line.level === 'warn' || line.level === 'error') out.warn(line.text);
        else out.info(line.text);
        break;
      }
      case 'job.finished':
        resolveFinished(event.payload as JobFinished);
        break;
      default:
        break;
    }
  };
  // Subscribe before starting so that nothing the job emits is missed; events that arrive before the
  // job id is known are replayed once it is.
  const unsubscribe = session.subscribe((event) => {
    if (jobId === null) early.push(event);
    else handle(event);
  });

  const signals = onStopSignals(() => {
    out.warn('cancelling the job… (Ctrl-C again to quit at once)');
    if (jobId !== null) void session.call('jobs.cancel', { jobId }).catch(() => {});
  }, () => {
    out.warn('stopped without waiting for the engine.');
    process.exit(EXIT_FAILURE);
  });

  try {
    const started = await session.call('jobs.start', name === undefined ? { recipe } : { recipe, name });
    jobId = started.jobId;
    out.info(`experiment ${started.experimentId} started`);
    for (const event of early.splice(0)) handle(event);
    if (signals.requested) void session.call('jobs.cancel', { jobId }).catch(() => {});
    const result = await finished;
    out.clearStatus();
    const experiment = await session.call('history.get', { id: started.experimentId });
    return { jobId: started.jobId, experimentId: started.experimentId, finished: result, experiment };
  } finally {
    unsubscribe();
    signals.dispose();
    out.clearStatus();
  }
}
