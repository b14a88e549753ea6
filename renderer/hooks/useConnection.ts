import { createContext, useContext, useEffect, useState } from 'react';
import type { WhittleApi } from '../../preload/contract.ts';

export type ConnectionState = 'connecting' | 'open' | 'closed';

/** Serve mode's client reports its connection; Electron IPC is always connected. */
interface Observable { readonly state: ConnectionState; onState(listener: (s: ConnectionState) => void): () => void }

function observable(api: WhittleApi): Observable | null {
  const o = api as Partial<Observable>;
  return typeof o.onState === 'function' && typeof o.state === 'string' ? (o as Observable) : null;
}

export interface Connection {
  state: ConnectionState;
  /** Bumped on each reconnect: events sent while disconnected are lost, so views fetch again. */
  generation: number;
  /** Still not connected a while after start, or lost after having been connected. */
  troubled: boolean;
}

export const ConnectionContext = createContext<Connection>({ state: 'open', generation: 0, troubled: false });

export function useConnection(): Connection {
  return useContext(ConnectionContext);
}

const GRACE_MS = 2500;

export function useConnectionState(api: WhittleApi): Connection {
  const source = observable(api);
  const [conn, setConn] = useState<Connection>(() => ({ state: source?.state ?? 'open', generation: 0, troubled: false }));

  useEffect(() => {
    if (!source) return;
    let everOpen = source.state === 'open';
    let graceOver = false;
    const timer = window.setTimeout(() => {
      graceOver = true;
      setConn((c) => ({ ...c, troubled: c.state !== 'open' }));
    }, GRACE_MS);
    const off = source.onState((state) => {
      const reconnected = state === 'open' && everOpen;
      if (state === 'open') everOpen = true;
      setConn((c) => ({
        state,
        generation: reconnected ? c.generation + 1 : c.generation,
        troubled: state !== 'open' && (everOpen || graceOver),
      }));
    });
    return () => { window.clearTimeout(timer); off(); };
  }, [source]);

  return conn;
}
