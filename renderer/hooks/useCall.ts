import { useCallback, useEffect, useRef, useState } from 'react';
import type { CallName, CallParams, CallResults, ErrorShape } from '../../preload/contract.ts';
import { toUiError } from '../lib/errors.ts';
import { useApi } from './useApi.ts';
import { useConnection } from './useConnection.ts';

export interface CallState<T> {
  data: T | null;
  error: ErrorShape | null;
  loading: boolean;
  /** Run the call again; `quiet` keeps the current data on screen while it runs. */
  reload: (options?: { quiet?: boolean }) => void;
}

/**
 * Runs `method(params)` when mounted and whenever the params change (compared as JSON); `params: null`
 * skips the call. Answers to superseded requests are dropped.
 */
export function useCall<M extends CallName>(method: M, params: CallParams<M> | null): CallState<CallResults[M]> {
  const api = useApi();
  const key = params === null ? null : JSON.stringify(params);
  const [state, setState] = useState<{ data: CallResults[M] | null; error: ErrorShape | null; loading: boolean }>({
    data: null, error: null, loading: key !== null,
  });
  const requestId = useRef(0);
  const [tick, setTick] = useState(0);
  const quietRef = useRef(false);
  const { generation } = useConnection();
  const seenGeneration = useRef(generation);
  if (seenGeneration.current !== generation) {
    // Reconnected: fetch again, keeping what is on screen meanwhile.
    seenGeneration.current = generation;
    quietRef.current = true;
  }

  useEffect(() => {
    if (key === null) {
      setState({ data: null, error: null, loading: false });
      return;
    }
    const id = ++requestId.current;
    const quiet = quietRef.current;
    quietRef.current = false;
    setState((s) => (quiet ? s : { data: s.data, error: null, loading: true }));
    api.call(method, JSON.parse(key) as CallParams<M>).then(
      (data) => { if (id === requestId.current) setState({ data, error: null, loading: false }); },
      (e: unknown) => { if (id === requestId.current) setState((s) => ({ data: quiet ? s.data : null, error: toUiError(e), loading: false })); },
    );
  }, [api, method, key, tick, generation]);

  const reload = useCallback((options?: { quiet?: boolean }) => {
    quietRef.current = options?.quiet ?? false;
    setTick((t) => t + 1);
  }, []);

  return { ...state, reload };
}
