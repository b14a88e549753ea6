import { useEffect, useRef } from 'react';
import type { EventName, EventPayloads } from '../../preload/contract.ts';
import { useApi } from './useApi.ts';

/** Listens to one event channel while mounted; the latest `listener` is always the one called. */
export function useEvent<E extends EventName>(channel: E, listener: (payload: EventPayloads[E]) => void): void {
  const api = useApi();
  const latest = useRef(listener);
  useEffect(() => { latest.current = listener; });
  useEffect(() => api.on(channel, (payload) => latest.current(payload)), [api, channel]);
}
