/**
 * The serve-mode client: the contract over one WebSocket to `whittle serve`. Reconnects with backoff
 * when the connection drops. Calls made while connecting wait for the connection; when a connection
 * drops or an attempt fails, every call in flight or waiting is rejected with a ConnectionError (one in
 * flight may or may not have run). Browser code only; any
 * WHATWG WebSocket implementation works (the browser's, or Node's global one in tests).
 */
import type { CallMessage, WhittleApi } from '../../preload/contract.ts';
import { ConnectionError, WhittleCallError, createLinkClient, decodeWire, encodeWire } from '../../preload/wire.ts';

export { ConnectionError, WhittleCallError } from '../../preload/wire.ts';

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface WebSocketClient extends WhittleApi {
  readonly state: ConnectionState;
  /** Called on every state change; after a reconnect ('open' again) the UI should refresh what it shows,
   *  since events sent while disconnected are not replayed. Returns the unsubscribe function. */
  onState(listener: (state: ConnectionState) => void): () => void;
  /** Close for good: no more reconnects; waiting and in-flight calls are rejected. */
  close(): void;
}

export interface WebSocketOptions {
  /** First reconnect delay in ms, doubled on each failure up to maxDelayMs. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** A WebSocket constructor (defaults to the global one). */
  WebSocketImpl?: new (url: string) => WebSocket;
}

interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

const OPEN = 1;

/** The WebSocket URL of the serve-mode server a page was loaded from. */
export function serveSocketUrl(location: { protocol: string; host: string }): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
}

/** `url`: the server's WebSocket endpoint (`ws://127.0.0.1:<port>/ws`); `token`: from the printed URL. */
export function connectWebSocket(url: string, token: string, options: WebSocketOptions = {}): WebSocketClient {
  const initialDelay = options.initialDelayMs ?? 250;
  const maxDelay = options.maxDelayMs ?? 5000;
  const Impl = (options.WebSocketImpl ?? (globalThis as { WebSocket?: new (url: string) => WebSocket }).WebSocket) as
    (new (url: string) => SocketLike) | undefined;
  if (!Impl) throw new Error('No WebSocket implementation is available here.');

  const endpoint = new URL(url);
  endpoint.searchParams.set('token', token);

  let socket: SocketLike | null = null;
  let state: ConnectionState = 'connecting';
  let closedForGood = false;
  let delay = initialDelay;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  const waiting: CallMessage[] = [];
  const stateListeners = new Set<(state: ConnectionState) => void>();

  function setState(next: ConnectionState): void {
    if (next === state) return;
    state = next;
    for (const listener of [...stateListeners]) {
      try { listener(next); } catch (error) { console.error('whittle: a connection-state listener failed', error); }
    }
  }

  const link = createLinkClient((message) => {
    if (closedForGood) throw new ConnectionError(message.method, 'The connection to Whittle was closed.');
    if (socket && socket.readyState === OPEN) socket.send(encodeWire(message));
    else waiting.push(message);
  });

  function open(): void {
    retryTimer = null;
    setState('connecting');
    const ws = new Impl!(endpoint.toString());
    socket = ws;
    ws.onopen = () => {
      delay = initialDelay;
      setState('open');
      for (const message of waiting.splice(0)) ws.send(encodeWire(message));
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let message: unknown;
      try { message = decodeWire(ev.data); } catch { return; }
      link.receive(message);
    };
    ws.onerror = () => { /* a close event follows */ };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      // Everything in flight or queued is rejected: a queued call must not run later, unobserved.
      waiting.length = 0;
      link.failPending((method) => new ConnectionError(method));
      if (closedForGood) return;
      setState('connecting');
      retryTimer = setTimeout(open, delay);
      delay = Math.min(maxDelay, delay * 2);
    };
  }

  open();

  return {
    call: link.call,
    on: link.on,
    get state() { return state; },
    onState(listener) {
      stateListeners.add(listener);
      return () => { stateListeners.delete(listener); };
    },
    close() {
      if (closedForGood) return;
      closedForGood = true;
      if (retryTimer) clearTimeout(retryTimer);
      const ws = socket;
      socket = null;
      ws?.close(1000, 'closed by the page');
      waiting.length = 0;
      link.failPending((method) => new ConnectionError(method, 'The connection to Whittle was closed.'));
      setState('closed');
    },
  };
}

export function isConnectionError(e: unknown): e is ConnectionError {
  return e instanceof ConnectionError;
}

export function isWhittleCallError(e: unknown): e is WhittleCallError {
  return e instanceof WhittleCallError;
}
