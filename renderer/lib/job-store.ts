/**
 * One place that listens to every job event from app start, so nothing is lost between `jobs.start`
 * answering and a page attaching to the job (a fast-failing job can finish before that), and so the
 * header can show what is running. Pages read one job with `get(jobId)`; states are immutable, a new
 * object only when something changed.
 */
import type { ExperimentDetail, JobInfo, WhittleApi } from '../../preload/contract.ts';
import { applyJobEvent, initialJobState, withEarlierLog, withEarlierPoints, type JobEvent, type JobState } from './job-state.ts';

const KEEP = 50;

export interface JobStore {
  get(jobId: string): JobState | undefined;
  /** Jobs seen running (not finished) in this session or reported by `jobs.list`. */
  running(): JobState[];
  /** Changes whenever any job changes (for useSyncExternalStore). */
  version(): number;
  subscribe(listener: () => void): () => void;
  /** A job we just started or re-attached to. */
  track(jobId: string, experimentId: number | null): void;
  /** What `jobs.list` says is running now; jobs missing from it that we still think run are left alone
   *  until their `job.finished` arrives or `settle` is called. */
  seedRunning(list: readonly JobInfo[]): void;
  /** A job that is no longer running, from its stored history row (e.g. after a reload). */
  settle(jobId: string, detail: ExperimentDetail): void;
  /** Earlier log lines from the history row, after re-attaching. */
  addEarlierLog(jobId: string, detail: Pick<ExperimentDetail, 'log'>): void;
  dispose(): void;
}

export function createJobStore(api: Pick<WhittleApi, 'on'>): JobStore {
  const jobs = new Map<string, JobState>();
  const listeners = new Set<() => void>();
  let v = 0;

  function emit(): void {
    v += 1;
    for (const l of [...listeners]) l();
  }

  function put(state: JobState): void {
    jobs.delete(state.jobId);
    jobs.set(state.jobId, state);
    if (jobs.size > KEEP) {
      for (const [id, s] of jobs) {
        if (jobs.size <= KEEP) break;
        if (s.finished) jobs.delete(id);
      }
    }
  }

  function update(jobId: string, experimentId: number | null, fn: (s: JobState) => JobState): void {
    const before = jobs.get(jobId) ?? initialJobState(jobId, experimentId);
    const after = fn(before);
    if (after !== before || !jobs.has(jobId)) {
      put(after);
      emit();
    }
  }

  function onEvent(event: JobEvent): void {
    update(event.payload.jobId, event.payload.experimentId, (s) => applyJobEvent(s, event));
  }

  const unsubscribers = [
    api.on('job.progress', (payload) => onEvent({ channel: 'job.progress', payload })),
    api.on('job.log', (payload) => onEvent({ channel: 'job.log', payload })),
    api.on('job.points', (payload) => onEvent({ channel: 'job.points', payload })),
    api.on('job.result', (payload) => onEvent({ channel: 'job.result', payload })),
    api.on('job.finished', (payload) => onEvent({ channel: 'job.finished', payload })),
  ];

  return {
    get: (jobId) => jobs.get(jobId),
    running: () => [...jobs.values()].filter((s) => !s.finished),
    version: () => v,
    subscribe(listener) {
      listeners.add(listener);
      return () => { listeners.delete(listener); };
    },
    track(jobId, experimentId) {
      update(jobId, experimentId, (s) => (s.experimentId === null && experimentId !== null ? { ...s, experimentId } : s));
    },
    seedRunning(list) {
      for (const info of list) {
        update(info.jobId, info.experimentId, (s) => {
          let next = s.experimentId === null ? { ...s, experimentId: info.experimentId } : s;
          if (info.progress) next = applyJobEvent(next, { channel: 'job.progress', payload: info.progress });
          if (info.points) next = withEarlierPoints(next, info.points);
          return next;
        });
      }
    },
    settle(jobId, detail) {
      update(jobId, detail.id, (s) => {
        if (s.finished) return s;
        const status = detail.status === 'done' || detail.status === 'failed' || detail.status === 'cancelled'
          ? detail.status
          : detail.status === 'interrupted' ? 'failed' : null;
        if (status === null) return s;
        const interrupted = detail.status === 'interrupted';
        const error = interrupted ? null : detail.error;
        let next = withEarlierLog(s, detail.log);
        if (!next.result && detail.metrics.length > 0) {
          next = { ...next, result: { jobId, experimentId: detail.id, seq: -1, metrics: detail.metrics, artefacts: detail.artefacts, details: detail.details } };
        }
        return { ...next, interrupted, finished: { jobId, experimentId: detail.id, seq: -1, status, error } };
      });
    },
    addEarlierLog(jobId, detail) {
      update(jobId, null, (s) => withEarlierLog(s, detail.log));
    },
    dispose() {
      for (const u of unsubscribers) u();
      listeners.clear();
    },
  };
}
