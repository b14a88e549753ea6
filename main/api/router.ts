/**
 * The router: one entry point for every transport. It parses the wire message, checks the sender,
 * validates the parameters against the contract (unknown keys rejected), checks every path the call names
 * against the sender's workspace when it has one (serve mode), and runs the handler. It never
 * throws: every outcome is a ReplyMessage, and a failure carries only an ErrorShape (stacks go to the log).
 */
import {
  CallMessage, calls, isCallName,
  type AppInfo, type CallName, type CallResults, type ErrorShape, type ParsedParams, type ReplyMessage,
} from '../../preload/contract.ts';
import { toErrorShape } from '../engine/errors.ts';
import { callPaths } from './call-paths.ts';
import { issuesText, readableIssues } from './issues.ts';
import { silentLogger, type Logger } from './logger.ts';
import type { Workspace } from './workspace.ts';

export type TransportKind = AppInfo['transport'];

/** Who sent a call, as far as the transport can tell. */
export interface SenderInfo {
  transport: TransportKind;
  /** Electron: the URL of the sending frame and whether it is the window's main (top) frame. */
  frameUrl?: string;
  isMainFrame?: boolean;
  /** Serve mode: the connection presented the right token. */
  authenticated?: boolean;
  /** Serve mode: the folders this caller may name; a call naming a path outside them is refused with
   *  INVALID_INPUT before its handler runs. Absent: any path (the desktop app and the CLI). */
  workspace?: Workspace;
}

export interface CallContext {
  transport: TransportKind;
  sender: SenderInfo;
}

export type Handler<M extends CallName> = (params: ParsedParams<M>, ctx: CallContext) => Promise<CallResults[M]>;
export type Handlers = { [M in CallName]: Handler<M> };

/** Returns true when the sender may call Whittle. */
export type SenderCheck = (sender: SenderInfo) => boolean;

/**
 * Memory transport: always (tests drive it). Serve: only authenticated connections. Electron: refused
 * unless the Electron layer supplies a check that knows the window's own URL.
 */
export const defaultSenderCheck: SenderCheck = (sender) => {
  if (sender.transport === 'memory') return true;
  if (sender.transport === 'serve') return sender.authenticated === true;
  return false;
};

export interface RouterOptions {
  checkSender?: SenderCheck;
  logger?: Logger;
}

export interface Router {
  dispatch(raw: unknown, sender: SenderInfo): Promise<ReplyMessage>;
}

function recoverId(raw: unknown): number {
  if (raw && typeof raw === 'object' && 'id' in raw) {
    const id = (raw as { id: unknown }).id;
    if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return id;
  }
  return -1;
}

function failure(id: number, error: ErrorShape): ReplyMessage {
  return { type: 'reply', id, ok: false, error };
}

export function createRouter(handlers: Handlers, options: RouterOptions = {}): Router {
  const checkSender = options.checkSender ?? defaultSenderCheck;
  const logger = options.logger ?? silentLogger;

  async function dispatch(raw: unknown, sender: SenderInfo): Promise<ReplyMessage> {
    const envelope = CallMessage.safeParse(raw);
    if (!envelope.success) {
      const issues = readableIssues(envelope.error);
      logger.log('warn', `malformed call message from ${sender.transport}: ${issuesText(issues)}`);
      return failure(recoverId(raw), { code: 'INVALID_INPUT', message: `Malformed call message: ${issuesText(issues)}`, details: { issues } });
    }
    const { id, method } = envelope.data;

    let allowed = false;
    try {
      allowed = checkSender(sender);
    } catch (error) {
      logger.log('error', 'the sender check failed', error);
    }
    if (!allowed) {
      logger.log('warn', `refused "${method}" from an untrusted ${sender.transport} sender${sender.frameUrl ? ` (${sender.frameUrl})` : ''}`);
      return failure(id, { code: 'UNAUTHORIZED', message: 'This caller is not allowed to use Whittle.' });
    }

    if (!isCallName(method)) {
      return failure(id, { code: 'INVALID_INPUT', message: `Unknown method "${method}"` });
    }

    const parsed = calls[method].params.safeParse(envelope.data.params ?? {});
    if (!parsed.success) {
      const issues = readableIssues(parsed.error);
      return failure(id, {
        code: 'INVALID_INPUT',
        message: `Invalid parameters for "${method}": ${issuesText(issues)}`,
        details: { issues },
      });
    }

    if (sender.workspace) {
      try {
        for (const { field, value } of callPaths(method, parsed.data)) await sender.workspace.check(value, field);
      } catch (error) {
        const shape = toErrorShape(error);
        logger.log('warn', `refused "${method}" from ${sender.transport}: ${shape.message}`);
        return failure(id, shape);
      }
    }

    try {
      const handler = handlers[method] as Handler<CallName>;
      const value = await handler(parsed.data as ParsedParams<CallName>, { transport: sender.transport, sender });
      return { type: 'reply', id, ok: true, value };
    } catch (error) {
      const shape = toErrorShape(error);
      if (shape.code === 'INTERNAL') logger.log('error', `"${method}" failed`, error);
      else logger.log('debug', `"${method}" failed with ${shape.code}: ${shape.message}`);
      return failure(id, shape);
    }
  }

  return { dispatch };
}
