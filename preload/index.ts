/**
 * The preload bridge (sandboxed): exposes exactly `window.whittle = { call, on, pathForFile }`. Calls go
 * to main over one invoke channel and are validated there; events arrive on one channel. Failed calls
 * reject with a plain `{ code, message, details }` object, because contextBridge drops the custom
 * properties of Error objects.
 */
import { contextBridge, ipcRenderer, webUtils } from 'electron';
import type { CallName, CallParams, CallResults, ErrorShape, EventName, EventPayloads, ReplyMessage, WhittleApi } from './contract.ts';

const CALL_CHANNEL = 'whittle:call';
const EVENT_CHANNEL = 'whittle:event';
const EVENT_NAMES: readonly string[] = ['job.progress', 'job.log', 'job.points', 'job.result', 'job.finished', 'history.changed'] satisfies readonly EventName[];

let nextId = 1;
const listeners = new Map<string, Set<(payload: unknown) => void>>();

ipcRenderer.on(EVENT_CHANNEL, (_event, message: { type?: unknown; channel?: unknown; payload?: unknown }) => {
  if (!message || message.type !== 'event' || typeof message.channel !== 'string') return;
  for (const listener of [...(listeners.get(message.channel) ?? [])]) {
    try {
      listener(message.payload);
    } catch (error) {
      console.error(`whittle: a listener for "${message.channel}" failed`, error);
    }
  }
});

const bridge = {
  async call<M extends CallName>(method: M, params: CallParams<M>): Promise<CallResults[M]> {
    if (typeof method !== 'string') {
      return Promise.reject({ code: 'INVALID_INPUT', message: 'The method name must be a string.' } satisfies ErrorShape);
    }
    const reply = (await ipcRenderer.invoke(CALL_CHANNEL, { type: 'call', id: nextId++, method, params })) as ReplyMessage;
    if (reply.ok) return reply.value as CallResults[M];
    return Promise.reject({ ...reply.error, method });
  },

  on<E extends EventName>(channel: E, listener: (payload: EventPayloads[E]) => void): () => void {
    if (!EVENT_NAMES.includes(channel)) throw new Error(`Unknown event channel "${String(channel)}"`);
    if (typeof listener !== 'function') throw new Error('The listener must be a function.');
    let set = listeners.get(channel);
    if (!set) listeners.set(channel, (set = new Set()));
    const wrapped = listener as (payload: unknown) => void;
    set.add(wrapped);
    return () => { set.delete(wrapped); };
  },

  /** The path of a file dropped on the window (the browser hides it; Electron knows it). */
  pathForFile(file: File): string {
    return webUtils.getPathForFile(file);
  },
} satisfies WhittleApi & { pathForFile(file: File): string };

contextBridge.exposeInMainWorld('whittle', bridge);
