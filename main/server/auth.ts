/**
 * Serve mode's access rules: a random token (in the printed URL) for the API and the WebSocket, and
 * Host/Origin checks so that another web site — directly or through DNS rebinding — cannot talk to the
 * server even though it listens on 127.0.0.1.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ErrorShape } from '../../preload/contract.ts';

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time comparison (hashing first makes the lengths equal, so length leaks nothing either). */
export function tokenMatches(expected: string, given: string | null | undefined): boolean {
  if (typeof given !== 'string' || given.length === 0) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}

/**
 * The token of an API request: only the `Authorization: Bearer <token>` header. A token in the URL
 * (`?token=`) is not accepted there: URLs end up in logs and shell history.
 */
export function headerToken(req: IncomingMessage): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice('Bearer '.length).trim();
  return null;
}

/**
 * The token of a WebSocket upgrade: the Bearer header (non-browser clients), else `?token=` — a browser's
 * WebSocket cannot set headers, and the page connects to its own server, so the URL never leaves it.
 */
export function upgradeToken(req: IncomingMessage, url: URL): string | null {
  return headerToken(req) ?? url.searchParams.get('token');
}

/** Host names that always mean this machine. Any port: an SSH tunnel (`ssh -L 9000:127.0.0.1:<port>`)
 *  reaches the server as localhost:9000. */
const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

/** Whether a Host header names this machine by a loopback name (a rebound DNS name fails here). */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const m = /^(\[[^\]]*\]|[^:]+)(?::(\d{1,5}))?$/.exec(host.toLowerCase());
  if (!m) return false;
  if (m[2] !== undefined && Number(m[2]) > 65535) return false;
  return LOOPBACK_NAMES.includes(m[1]);
}

/**
 * The Host header must be a loopback name (any port); Origin, when sent, must be the page's own origin
 * `http://<that host>` — a page of another site, or of another local port, is refused.
 */
export function sameSiteRequest(req: IncomingMessage): boolean {
  const host = req.headers.host?.toLowerCase();
  if (!host || !isLoopbackHost(host)) return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  return origin.toLowerCase() === `http://${host}`;
}

export const UNAUTHORIZED: ErrorShape = {
  code: 'UNAUTHORIZED',
  message: 'Missing or wrong access token: open the URL printed by `whittle serve`, which carries the token.',
};

export const FOREIGN_ORIGIN: ErrorShape = {
  code: 'UNAUTHORIZED',
  message: 'Requests from other web sites or host names are refused: open the URL printed by `whittle serve`.',
};
