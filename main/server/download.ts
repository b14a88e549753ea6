/**
 * Serve mode's folder download: an output folder (or one file) as a zip, streamed (zip.ts) so that no
 * folder is held in memory. The path must lie inside the workspace, like every path a call names.
 *
 *   POST /api/download        { path } with the Bearer token → { url: "/api/download/<ticket>", fileName }
 *   GET  /api/download/<t>    the zip; the ticket is good for one download within a minute, so a browser
 *                             can fetch it as a plain link (it cannot send the header) without the token
 *                             ever appearing in a URL
 *   GET  /api/download?path=  the zip, with the Bearer token (scripts, curl)
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WhittleError } from '../engine/errors.ts';
import type { Workspace } from '../api/workspace.ts';
import { expandHome } from '../api/workspace.ts';
import { folderEntries, zipStream, type ZipSource } from './zip.ts';

export const TICKET_TTL_MS = 60_000;

/** One-use download tickets, each for one checked path. */
export class DownloadTickets {
  private readonly tickets = new Map<string, { target: string; expires: number }>();

  issue(target: string, now = Date.now()): string {
    for (const [t, v] of this.tickets) if (v.expires <= now) this.tickets.delete(t);
    const ticket = randomBytes(24).toString('base64url');
    this.tickets.set(ticket, { target, expires: now + TICKET_TTL_MS });
    return ticket;
  }

  /** The ticket's path, once; null when unknown, used or expired. */
  take(ticket: string, now = Date.now()): string | null {
    const v = this.tickets.get(ticket);
    this.tickets.delete(ticket);
    return v && v.expires > now ? v.target : null;
  }
}

/** The folder or file a download names: absolute, inside the workspace, existing. */
export async function downloadTarget(workspace: Workspace, input: unknown): Promise<string> {
  if (typeof input !== 'string' || input.trim() === '' || input.length > 4096) {
    throw new WhittleError('INVALID_INPUT', 'Name the folder to download: { "path": "/full/path/of/the/folder" }.');
  }
  const p = path.normalize(expandHome(input));
  if (!path.isAbsolute(p)) throw new WhittleError('INVALID_INPUT', `"${input}" is not a full path.`, { path: input });
  await workspace.check(p, 'path');
  const st = await stat(p).catch(() => null);
  if (!st) throw new WhittleError('NOT_FOUND', `There is nothing at ${p}: it was moved or deleted.`, { path: p });
  if (!st.isDirectory() && !st.isFile()) throw new WhittleError('INVALID_INPUT', `${p} is neither a folder nor a file.`, { path: p });
  return p;
}

/** `model-q4.zip` for a folder or a file. */
export function zipName(target: string): string {
  const base = path.basename(target).replace(/[^\w.\-() ]+/g, '_') || 'download';
  return `${base.replace(/\.zip$/i, '')}.zip`;
}

async function sources(target: string): Promise<ZipSource[]> {
  const st = await stat(target);
  if (st.isDirectory()) return folderEntries(target);
  return [{ name: path.basename(target), file: target, size: st.size, mtime: st.mtime }];
}

/** Streams the zip of `target` as the response (headers first; a failure later cuts the connection). */
export async function sendZip(res: ServerResponse, target: string, headers: Record<string, string>): Promise<void> {
  const list = await sources(target);
  res.writeHead(200, {
    ...headers,
    'Content-Type': 'application/zip',
    'Content-Disposition': `attachment; filename="${zipName(target)}"`,
    'Cache-Control': 'no-store',
  });
  await pipeline(Readable.from(zipStream(list)), res);
}
