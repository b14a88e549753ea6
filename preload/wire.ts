/**
 * The client half of a message transport, independent of what carries the messages: request ids, the
 * pending-call map, reply → resolve/reject, events → `on` listeners. The WebSocket client and the
 * in-memory transport both use it, so tests over the in-memory pair exercise the same client code the
 * browser runs. Plain TypeScript: no DOM, no Node.
 */
import {
  events, type CallMessage, type CallName, type CallParams, type CallResults, type ErrorShape, type EventName, type EventPayloads,
  type WhittleApi,
} from './contract.ts';

type ErrorCode = ErrorShape['code'];

// ── the text wire format (WebSocket, HTTP) ───────────────────────────────────────────────────────────
// JSON, with two additions so that text transports carry what Electron's structured clone carries:
// NaN and ±Infinity (a diverged perplexity is still a result) travel as {"$nonFinite": "NaN"}, and typed
// arrays travel as plain arrays of numbers.

const NON_FINITE = '$nonFinite';

export function encodeWire(message: unknown): string {
  return JSON.stringify(message, (_key, value: unknown) => {
    if (typeof value === 'number' && !Number.isFinite(value)) return { [NON_FINITE]: String(value) };
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number>);
    return value;
  });
}

export function decodeWire(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const tag = (value as Record<string, unknown>)[NON_FINITE];
      if (typeof tag === 'string' && Object.keys(value).length === 1 && (tag === 'NaN' || tag === 'Infinity' || tag === '-Infinity')) return Number(tag);
    }
    return value;
  });
}

/** A failed call, with the contract's error code (the renderer maps codes to words). */
export class WhittleCallError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
  readonly method: string;

  constructor(shape: ErrorShape, method: string) {
    super(shape.message);
    this.name = 'WhittleCallError';
    this.code = shape.code;
    this.details = shape.details;
    this.method = method;
  }
}

/** The connection dropped while the call was in flight; it may or may not have run. */
export class ConnectionError extends WhittleCallError {
  constructor(method: string, message = 'The connection to Whittle was lost. It reconnects by itself; try again in a moment.') {
    super({ code: 'IO', message }, method);
    this.name = 'ConnectionError';
  }
}

/** True for anything carrying a contract error code: WhittleCallError, or the plain object the Electron
 *  bridge rejects with (contextBridge drops custom properties of Error objects). */
export function isCallError(e: unknown): e is { code: ErrorCode; message: string; details?: Record<string, unknown> } {
  return !!e && typeof e === 'object' && typeof (e as { code?: unknown }).code === 'string' && typeof (e as { message?: unknown }).message === 'string';
}

export interface LinkClient extends WhittleApi {
  /** Feed one incoming message (a reply or an event) to the client. Anything else is ignored. */
  receive(message: unknown): void;
  /** Reject every call in flight with `makeError(method)`. */
  failPending(makeError: (method: string) => Error): void;
  readonly pendingCount: number;
}

interface Pending { method: string; resolve: (value: unknown) => void; reject: (error: Error) => void }

/** `send` delivers one call message; it may throw (the call is then rejected with that error). */
export function createLinkClient(send: (message: CallMessage) => void): LinkClient {
  let nextId = 1;
  const pending = new Map<number, Pending>();
  const listeners = new Map<string, Set<(payload: unknown) => void>>();

  function deliverEvent(channel: string, payload: unknown): void {
    const set = listeners.get(channel);
    if (!set) return;
    // Events are checked against the contract like calls are: a malformed one never reaches the UI.
    const schema = Object.prototype.hasOwnProperty.call(events, channel) ? events[channel as EventName] : null;
    const checked = schema?.safeParse(payload);
    if (!checked?.success) {
      console.error(`whittle: dropped an event on "${channel}" that does not match the contract`, checked?.error.issues ?? 'unknown channel');
      return;
    }
    for (const listener of [...set]) {
      try {
        listener(payload);
      } catch (error) {
        console.error(`whittle: a listener for "${channel}" failed`, error);
      }
    }
  }

  return {
    call<M extends CallName>(method: M, params: CallParams<M>): Promise<CallResults[M]> {
      const id = nextId++;
      return new Promise<CallResults[M]>((resolve, reject) => {
        pending.set(id, { method, resolve: resolve as (value: unknown) => void, reject });
        try {
          send({ type: 'call', id, method, params });
        } catch (error) {
          pending.delete(id);
          reject(error instanceof Error ? error : new ConnectionError(method, String(error)));
        }
      });
    },

    on<E extends EventName>(channel: E, listener: (payload: EventPayloads[E]) => void): () => void {
      let set = listeners.get(channel);
      if (!set) listeners.set(channel, (set = new Set()));
      const wrapped = listener as (payload: unknown) => void;
      set.add(wrapped);
      return () => { set.delete(wrapped); };
    },

    receive(message) {
      if (!message || typeof message !== 'object') return;
      const m = message as { type?: unknown; id?: unknown; ok?: unknown; value?: unknown; error?: unknown; channel?: unknown; payload?: unknown };
      if (m.type === 'event' && typeof m.channel === 'string') {
        deliverEvent(m.channel, m.payload);
        return;
      }
      if (m.type !== 'reply' || typeof m.id !== 'number') return;
      const entry = pending.get(m.id);
      if (!entry) return;
      pending.delete(m.id);
      if (m.ok === true) entry.resolve(m.value);
      else if (isCallError(m.error)) entry.reject(new WhittleCallError(m.error as ErrorShape, entry.method));
      else entry.reject(new WhittleCallError({ code: 'INTERNAL', message: 'Whittle sent a malformed reply.' }, entry.method));
    },

    failPending(makeError) {
      const entries = [...pending.values()];
      pending.clear();
      for (const entry of entries) entry.reject(makeError(entry.method));
    },

    get pendingCount() { return pending.size; },
  };
}
