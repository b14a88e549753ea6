/**
 * The in-memory transport pair (ARCHITECTURE seam 2): the real router and event bus on one side, the
 * renderer's own link client on the other. Every message is copied the way both real transports copy it
 * — structured clone (Electron IPC), then the text wire format (serve mode) — after a strict check, so a
 * value that one of them would reject or silently change (a function, a class instance, a Map, a Date, a
 * BigInt) fails here too instead of passing in tests.
 */
import type { CallMessage, EventMessage, ReplyMessage, WhittleApi } from '../../preload/contract.ts';
import { ConnectionError, createLinkClient, decodeWire, encodeWire } from '../../preload/wire.ts';
import type { EventBus } from './events.ts';
import { silentLogger, type Logger } from './logger.ts';
import type { Router, SenderInfo } from './router.ts';

/** Why `value` would not survive both structured clone and the text wire format; null when it would. */
export function wireProblem(value: unknown, at = 'value'): string | null {
  switch (typeof value) {
    case 'string': case 'boolean': case 'number': return null;
    case 'undefined': return null;
    case 'bigint': return `${at} is a BigInt, which JSON cannot encode`;
    case 'function': return `${at} is a function`;
    case 'symbol': return `${at} is a symbol`;
  }
  if (value === null) return null;
  // Typed arrays arrive as arrays of numbers in serve mode (see encodeWire); BigInt arrays cannot.
  if (ArrayBuffer.isView(value)) {
    return value instanceof BigInt64Array || value instanceof BigUint64Array || value instanceof DataView
      ? `${at} is a ${value.constructor.name}, which the wire format cannot carry` : null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (value[i] === undefined) return `${at}[${i}] is undefined, which JSON turns into null`;
      const problem = wireProblem(value[i], `${at}[${i}]`);
      if (problem) return problem;
    }
    return null;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    return `${at} is a ${(value as object).constructor?.name ?? 'class instance'}, not a plain object`;
  }
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    const problem = wireProblem(item, `${at}.${key}`);
    if (problem) return problem;
  }
  return null;
}

/** A copy of `message` as the other side of a real transport would receive it; throws when it would not survive. */
export function wireCopy<T>(message: T): T {
  const problem = wireProblem(message, 'message');
  if (problem) throw new TypeError(`Not transferable: ${problem}`);
  return decodeWire(encodeWire(structuredClone(message))) as T;
}

export interface MemoryClient extends WhittleApi {
  /** Stop receiving events and reject calls in flight. */
  close(): void;
  /** Messages the server side could not send (each also logged); tests assert this stays empty. */
  readonly transportErrors: readonly string[];
}

export interface MemoryClientOptions {
  sender?: SenderInfo;
  logger?: Logger;
}

export function createMemoryClient(router: Router, bus: EventBus, options: MemoryClientOptions = {}): MemoryClient {
  const sender: SenderInfo = options.sender ?? { transport: 'memory' };
  const logger = options.logger ?? silentLogger;
  const transportErrors: string[] = [];
  let closed = false;

  // Microtasks run in order, so replies and events reach the client in the order the server sent them.
  const deliver = (message: ReplyMessage | EventMessage): void => {
    if (closed) return;
    queueMicrotask(() => { if (!closed) client.receive(message); });
  };

  const client = createLinkClient((call: CallMessage) => {
    if (closed) throw new ConnectionError(call.method, 'This in-memory connection is closed.');
    const sent = wireCopy(call);
    void router.dispatch(sent, sender).then((reply) => {
      let copy: ReplyMessage;
      try {
        copy = wireCopy(reply);
      } catch (error) {
        const text = `reply to "${call.method}": ${(error as Error).message}`;
        transportErrors.push(text);
        logger.log('error', `memory transport: ${text}`);
        copy = { type: 'reply', id: reply.id, ok: false, error: { code: 'INTERNAL', message: `The reply to "${call.method}" could not be sent.` } };
      }
      deliver(copy);
    });
  });

  const unsubscribe = bus.subscribe((event) => {
    try {
      deliver(wireCopy(event));
    } catch (error) {
      const text = `event "${event.channel}": ${(error as Error).message}`;
      transportErrors.push(text);
      logger.log('error', `memory transport: ${text}`);
    }
  });

  return {
    call: client.call,
    on: client.on,
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      client.failPending((method) => new ConnectionError(method, 'This in-memory connection was closed.'));
    },
    get transportErrors() { return transportErrors; },
  };
}
