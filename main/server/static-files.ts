/**
 * Resolving and typing the renderer bundle's files, for serve mode and the desktop app's custom protocol.
 * A request path maps to a file inside the root or to nothing: encoded dots and slashes, backslashes,
 * NUL bytes and anything that would leave the root are refused.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

export function contentTypeFor(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The file under `root` that `urlPath` (the path part of a request URL, still percent-encoded) names, or
 * null when it names nothing servable. '/' is index.html. Asynchronous: the server never blocks on the disk.
 */
export async function resolveStaticFile(root: string, urlPath: string): Promise<string | null> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (!decoded.startsWith('/') || decoded.includes('\0') || decoded.includes('\\')) return null;
  const segments = decoded.split('/').filter((s) => s !== '');
  if (segments.some((s) => s === '..' || s === '.' || s.startsWith('.'))) return null;
  const relative = segments.length === 0 ? 'index.html' : segments.join('/');

  const rootReal = await safeRealpath(root);
  if (!rootReal) return null;
  const candidate = await safeRealpath(path.join(rootReal, relative));
  if (!candidate || !candidate.startsWith(rootReal + path.sep)) return null;
  return (await stat(candidate).then((st) => st.isFile(), () => false)) ? candidate : null;
}

function safeRealpath(p: string): Promise<string | null> {
  return realpath(p).catch(() => null);
}
