/**
 * Where the renderer gets its API: the Electron preload's `window.whittle`, or in serve mode a WebSocket
 * to the server that served this page, authorised by the token from the URL the server printed.
 */
import type { WhittleApi } from '../../preload/contract.ts';
import { extractToken } from '../lib/token.ts';
import { connectWebSocket } from './websocket.ts';

/** The desktop preload adds a way to get a dropped file's path (browsers never reveal it). */
export interface DesktopApi extends WhittleApi {
  pathForFile?(file: File): string;
}

declare global {
  interface Window { whittle?: DesktopApi }
}

export type Transport = 'electron' | 'serve';

const TOKEN_KEY = 'whittle.token';

/** Thrown by getApi() in serve mode when the page was opened without the token. */
export class MissingTokenError extends Error {
  constructor() {
    super('Open the URL printed by `whittle serve`.');
    this.name = 'MissingTokenError';
  }
}

let cached: WhittleApi | null = null;

export function transport(): Transport {
  return window.whittle ? 'electron' : 'serve';
}

/** The token from `#token=…` (moved into sessionStorage and out of the address bar), or the stored one. */
function serveToken(): string | null {
  const { token, hash } = extractToken(location.hash);
  if (token) {
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      // Storage can be disabled; the token then lives only as long as this page.
    }
    history.replaceState(null, '', `${location.pathname}${location.search}${hash}`);
    return token;
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** Serve mode: the token for requests beside the WebSocket (folder downloads); null on the desktop. */
export function serveAuthToken(): string | null {
  return window.whittle ? null : serveToken();
}

export function getApi(): WhittleApi {
  if (cached) return cached;
  if (window.whittle) {
    cached = window.whittle;
    return cached;
  }
  const token = serveToken();
  if (!token) throw new MissingTokenError();
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  cached = connectWebSocket(`${scheme}://${location.host}/ws`, token);
  return cached;
}

/** The path of a dropped file where the platform can tell it (desktop only). */
export function pathForDroppedFile(file: File): string | null {
  try {
    const p = window.whittle?.pathForFile?.(file);
    return p ? p : null;
  } catch {
    return null;
  }
}
