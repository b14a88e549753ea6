/**
 * The event bus between the services (job progress, results, history changes) and the transports.
 * Every subscriber receives every event, synchronously and in emit order; a transport that writes each
 * event to its connection as it arrives therefore keeps that order on the wire, interleaved correctly
 * with replies.
 */
import type { EventMessage, EventName, EventPayloads } from '../../preload/contract.ts';
import { silentLogger, type Logger } from './logger.ts';

export type EventSubscriber = (message: EventMessage) => void;

export interface EventBus {
  emit<E extends EventName>(channel: E, payload: EventPayloads[E]): void;
  /** Receives every event from now on; returns the unsubscribe function. */
  subscribe(subscriber: EventSubscriber): () => void;
  readonly subscriberCount: number;
}

export function createEventBus(options: { logger?: Logger } = {}): EventBus {
  const logger = options.logger ?? silentLogger;
  const subscribers = new Set<EventSubscriber>();
  return {
    emit(channel, payload) {
      const message = { type: 'event', channel, payload } as EventMessage;
      for (const subscriber of [...subscribers]) {
        try {
          subscriber(message);
        } catch (error) {
          // One broken connection must not keep the event from the others.
          logger.log('error', `an event subscriber failed on "${channel}"`, error);
        }
      }
    },
    subscribe(subscriber) {
      subscribers.add(subscriber);
      return () => { subscribers.delete(subscriber); };
    },
    get subscriberCount() { return subscribers.size; },
  };
}
