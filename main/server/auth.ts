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

/** The token a request carries: `?token=` in the URL, or `Authorization: Bearer <token>`. */
export function requestToken(req: IncomingMessage, url: URL): string | null {
  const fromQuery = url.searchParams.get('token');
  if (fromQuery) return fromQuery;
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice('Bearer '.length).trim();
  return null;
}

export function allowedHosts(port: number): string[] {
  return [`127.0.0.1:${port}`, `localhost:${port}`];
}

/** The Host header must name this server (a rebound DNS name fails here); Origin, when sent, must be ours. */
export function sameSiteRequest(req: IncomingMessage, port: number): boolean {
  const hosts = allowedHosts(port);
  const host = req.headers.host?.toLowerCase();
  if (!host || !hosts.includes(host)) return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  return hosts.some((h) => origin.toLowerCase() === `http://${h}`);
}

export const UNAUTHORIZED: ErrorShape = {
  code: 'UNAUTHORIZED',
  message: 'Missing or wrong access token: open the URL printed by `whittle serve`, which carries the token.',
};

export const FOREIGN_ORIGIN: ErrorShape = {
  code: 'UNAUTHORIZED',
  message: 'Requests from other web sites or host names are refused: open the URL printed by `whittle serve`.',
};
