/**
 * The state of one job as the UI sees it, folded from its events. Events for other jobs are ignored;
 * progress may be coalesced or arrive late, so an older progress (lower seq) never replaces a newer one;
 * log lines are de-duplicated and kept in time order, only the last LOG_TAIL.
 */
import type { EventPayloads, JobFinished, JobLog, JobPoints, JobProgress, JobResult, LogLine } from '../../preload/contract.ts';
import { appendPoints, type SeriesPoint } from '../../preload/series.ts';

export const LOG_TAIL = 200;

export type JobPhase = 'starting' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobState {
  jobId: string;
  experimentId: number | null;
  progress: JobProgress | null;
  log: Pick<JobLog, 'seq' | 'time' | 'level' | 'text'>[];
  result: JobResult | null;
  finished: JobFinished | null;
  /** The points of each series the job streamed (a training curve), in step order. */
  series: Record<string, SeriesPoint[]>;
  /** Finished because Whittle stopped while it ran (the history row says `interrupted`). */
  interrupted: boolean;
}

export type JobEvent =
  | { channel: 'job.progress'; payload: JobProgress }
  | { channel: 'job.log'; payload: JobLog }
  | { channel: 'job.points'; payload: JobPoints }
  | { channel: 'job.result'; payload: JobResult }
  | { channel: 'job.finished'; payload: JobFinished };

export function initialJobState(jobId: string, experimentId: number | null = null): JobState {
  return { jobId, experimentId, progress: null, log: [], result: null, finished: null, interrupted: false, series: {} };
}

export function jobPhase(s: JobState): JobPhase {
  if (s.finished) return s.finished.status;
  return s.progress ? 'running' : 'starting';
}

/** Live lines and lines read back from the history may overlap; the same (time, level, text) is one line. */
function mergeLog(log: JobState['log'], lines: readonly Pick<LogLine, 'seq' | 'time' | 'level' | 'text'>[]): JobState['log'] {
  if (lines.length === 0) return log;
  const byKey = new Map<string, JobState['log'][number]>();
  // Live events and history rows number lines differently (job-event seq vs log seq): match on content.
  const keyOf = (l: Pick<LogLine, 'time' | 'level' | 'text'>) => `${l.time}\u0000${l.level}\u0000${l.text}`;
  for (const l of log) byKey.set(keyOf(l), l);
  let added = false;
  for (const l of lines) {
    const key = keyOf(l);
    if (byKey.has(key)) continue;
    byKey.set(key, { seq: l.seq, time: l.time, level: l.level, text: l.text });
    added = true;
  }
  if (!added) return log;
  const merged = [...byKey.values()].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.seq - b.seq));
  return merged.length > LOG_TAIL ? merged.slice(merged.length - LOG_TAIL) : merged;
}

export function applyJobEvent(state: JobState, event: JobEvent): JobState {
  const p = event.payload;
  if (p.jobId !== state.jobId) return state;
  const experimentId = state.experimentId ?? p.experimentId;
  switch (event.channel) {
    case 'job.progress': {
      if (state.finished) return state;
      if (state.progress && event.payload.seq < state.progress.seq) return state;
      return { ...state, experimentId, progress: event.payload };
    }
    case 'job.log':
      return { ...state, experimentId, log: mergeLog(state.log, [event.payload]) };
    case 'job.points': {
      return { ...state, experimentId, series: withPoints(state.series, event.payload.points) };
    }
    case 'job.result':
      return { ...state, experimentId, result: event.payload };
    case 'job.finished':
      return { ...state, experimentId, finished: event.payload };
  }
}

/** The series with `points` appended, each to its own series, in order. */
function withPoints(series: Readonly<Record<string, SeriesPoint[]>>, points: readonly SeriesPoint[]): Record<string, SeriesPoint[]> {
  const byName = new Map<string, SeriesPoint[]>();
  for (const p of points) byName.set(p.series, [...(byName.get(p.series) ?? []), p]);
  const out = { ...series };
  for (const [name, list] of byName) out[name] = appendPoints(out[name] ?? [], list);
  return out;
}

/** Points the job streamed before this page attached (`jobs.list`): merged in step order with any seen since. */
export function withEarlierPoints(state: JobState, points: readonly SeriesPoint[]): JobState {
  if (points.length === 0) return state;
  const earlier = withPoints({}, points);
  return { ...state, series: withPoints(earlier, Object.values(state.series).flat()) };
}

/** Earlier log lines fetched from the history after re-attaching to a running job. */
export function withEarlierLog(state: JobState, lines: readonly LogLine[]): JobState {
  const log = mergeLog(state.log, lines);
  return log === state.log ? state : { ...state, log };
}

export function isJobEventChannel(channel: keyof EventPayloads): channel is JobEvent['channel'] {
  return channel === 'job.progress' || channel === 'job.log' || channel === 'job.points' || channel === 'job.result' || channel === 'job.finished';
}

/** "evaluate:perplexity" → "Evaluate · perplexity" for the progress line (the raw phase stays in data-phase). */
export function phaseLabel(phase: string): string {
  const parts = phase.split(':').filter(Boolean).map((p) => p.replace(/[_-]+/g, ' '));
  if (parts.length === 0) return phase;
  const text = parts.join(' · ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** One phase's part of the job's progress bar, in percent of the whole bar. */
export interface BarSection {
  phase: string;
  label: string;
  /** Its share of the bar. */
  width: number;
  /** How much of its share is done (0 … width). */
  filled: number;
  /** The phase running now. */
  current: boolean;
}

/**
 * The job's one progress bar: the whole job's percent and the phases as segments laid end to end (their
 * planned shares), each filled as far as the job has got. Without a plan in the event (an older engine),
 * the current phase's own count fills one segment.
 */
export function progressBar(p: JobProgress | null, finished: boolean): { percent: number | null; sections: BarSection[] } {
  if (!p) return { percent: finished ? 100 : null, sections: [] };
  if (p.overall === undefined || !p.segments || p.segments.length === 0) {
    const percent = finished ? 100 : p.total > 0 ? Math.min(100, (100 * p.done) / p.total) : null;
    return { percent, sections: [{ phase: p.phase, label: phaseLabel(p.phase), width: 100, filled: percent ?? 0, current: !finished }] };
  }
  const overall = finished ? 100 : 100 * p.overall;
  let start = 0;
  let currentFound = false;
  const sections = p.segments.map((seg) => {
    const width = 100 * seg.share;
    const filled = Math.min(width, Math.max(0, overall - start));
    const current = !finished && !currentFound && seg.phase === p.phase && overall >= start - 1e-9;
    if (current) currentFound = true;
    start += width;
    return { phase: seg.phase, label: phaseLabel(seg.phase), width, filled, current };
  });
  return { percent: overall, sections };
}
