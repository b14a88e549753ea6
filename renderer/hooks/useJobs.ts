import { createContext, useCallback, useContext, useEffect, useSyncExternalStore } from 'react';
import type { JobStore } from '../lib/job-store.ts';
import type { JobState } from '../lib/job-state.ts';
import { toUiError } from '../lib/errors.ts';
import { useApi } from './useApi.ts';
import { useConnection } from './useConnection.ts';
import { useEvent } from './useEvent.ts';

export const JobStoreContext = createContext<JobStore | null>(null);

export function useJobStore(): JobStore {
  const store = useContext(JobStoreContext);
  if (!store) throw new Error('useJobStore() outside <JobStoreContext.Provider>');
  return store;
}

/**
 * One job's live state. On attach (a fresh start, or a reload while it runs) it asks `jobs.list`
 * whether the job still runs; if not, the history row gives the final state; if it runs, the history
 * row gives the log lines from before the page was loaded.
 */
export function useJob(jobId: string | null, experimentId: number | null): JobState | null {
  const api = useApi();
  const store = useJobStore();
  const subscribe = useCallback((l: () => void) => store.subscribe(l), [store]);
  const state = useSyncExternalStore(subscribe, () => (jobId ? store.get(jobId) ?? null : null));
  const { generation } = useConnection();

  useEffect(() => {
    if (!jobId) return;
    let alive = true;
    store.track(jobId, experimentId);
    (async () => {
      const list = await api.call('jobs.list', {});
      if (!alive) return;
      const info = list.find((j) => j.jobId === jobId);
      if (info) store.seedRunning([info]);
      const expId = info?.experimentId ?? experimentId ?? store.get(jobId)?.experimentId ?? null;
      if (expId === null) return;
      const detail = await api.call('history.get', { id: expId });
      if (!alive) return;
      if (info) store.addEarlierLog(jobId, detail);
      else store.settle(jobId, detail);
    })().catch((e: unknown) => {
      console.warn('whittle: could not re-attach to job', jobId, toUiError(e));
    });
    return () => { alive = false; };
  }, [api, store, jobId, experimentId, generation]);

  return state;
}

/** Jobs running now: `jobs.list` at start and on every history change, live progress from events. */
export function useRunningJobs(): JobState[] {
  const api = useApi();
  const store = useJobStore();
  const subscribe = useCallback((l: () => void) => store.subscribe(l), [store]);
  useSyncExternalStore(subscribe, () => store.version());

  const refresh = useCallback(() => {
    api.call('jobs.list', {}).then((list) => {
      store.seedRunning(list);
      // Jobs we still think run but the app no longer lists finished while we were not listening.
      const listed = new Set(list.map((j) => j.jobId));
      for (const s of store.running()) {
        if (listed.has(s.jobId) || s.experimentId === null) continue;
        api.call('history.get', { id: s.experimentId }).then((d) => store.settle(s.jobId, d), () => undefined);
      }
    }, () => undefined);
  }, [api, store]);
  const { generation } = useConnection();
  useEffect(refresh, [refresh, generation]);
  useEvent('history.changed', refresh);

  return store.running();
}
