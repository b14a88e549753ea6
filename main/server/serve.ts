/**
 * Serve mode (`whittle serve`): the renderer bundle over HTTP and the contract over a WebSocket, on
 * 127.0.0.1 only, guarded by a random token and Host/Origin checks. The printed URL carries the token in
 * its fragment (`#token=…`), which browsers never send to a server, so it stays out of Referer headers
 * and logs; the page reads it and connects to `/ws?token=…`. Every path a call names must lie in the
 * server's workspace (`--root` folders; default the user's home folder and the history folder).
 *
 *   GET  /…            the renderer bundle (no token: it is the public app; the data is behind the token)
 *   GET  /ws           WebSocket upgrade (Bearer header or ?token=) → CallMessage in, ReplyMessage and EventMessage out
 *   POST /api/call     one CallMessage as JSON (Authorization: Bearer <token>) → its ReplyMessage
 *   /api/download      a folder of the workspace as a zip (download.ts)
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ErrorShape, EventMessage, ReplyMessage } from '../../preload/contract.ts';
import { decodeWire, encodeWire } from '../../preload/wire.ts';
import { appPaths } from '../paths.ts';
import { toErrorShape, WhittleError } from '../engine/errors.ts';
import type { EventBus } from '../api/events.ts';
import { silentLogger, type Logger } from '../api/logger.ts';
import type { Router, SenderInfo } from '../api/router.ts';
import { createWorkspace } from '../api/workspace.ts';
import { FOREIGN_ORIGIN, UNAUTHORIZED, headerToken, newToken, sameSiteRequest, tokenMatches, upgradeToken } from './auth.ts';
import { contentTypeFor, resolveStaticFile } from './static-files.ts';
import { DownloadTickets, downloadTarget, sendZip, zipName } from './download.ts';

/** The renderer's Content-Security-Policy in serve mode (Mantine needs inline styles; nothing else inline). */
export const SERVE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "connect-src 'self' ws://127.0.0.1:* ws://localhost:* ws://[::1]:*",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': SERVE_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const MAX_MESSAGE_BYTES = 1 << 20;
/** An oversized request body is read and dropped up to this size so that the 413 reaches the client;
 *  beyond it the connection is cut. */
const MAX_DRAINED_BYTES = 64 << 20;
/** Above this many unsent bytes on a socket, progress events are skipped (the next one supersedes them);
 *  results, logs and "finished" are always sent. */
const PROGRESS_BACKPRESSURE_BYTES = 4 << 20;

export interface ServeTarget {
  router: Router;
  events: EventBus;
  /** The history folder: one of the default workspace roots. */
  home?: string;
}

export interface ServeOptions {
  app: ServeTarget;
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: '127.0.0.1';
  /** The built renderer; defaults to out/renderer. */
  rendererRoot?: string;
  /** The folders calls may name (`whittle serve --root`); default the user's home folder. The history
   *  folder (where outputs go) and the bundled sample's folder are always added. */
  roots?: readonly string[];
  logger?: Logger;
}

export interface RunningServer {
  /** What to open: http://127.0.0.1:<port>/#token=<token> */
  url: string;
  token: string;
  port: number;
  /** Open WebSocket connections right now. */
  readonly connections: number;
  /** The workspace: the real locations of the folders calls may name. */
  readonly roots: readonly string[];
  close(): Promise<void>;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, error: ErrorShape): void {
  sendJson(res, status, error);
}

function refuseUpgrade(socket: Duplex, status: number, reason: string, error: ErrorShape): void {
  const body = JSON.stringify(error);
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

const NOT_BUILT_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>Whittle</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>Whittle's interface has not been built yet</h1>
<p>Run <code>npm run build</code> in the Whittle folder, then start <code>whittle serve</code> again.</p>
</body></html>`;

/** Wire text of a reply, or of an INTERNAL error reply when the value cannot be encoded. */
function encodeReply(reply: ReplyMessage, logger: Logger): string {
  try {
    return encodeWire(reply);
  } catch (error) {
    logger.log('error', `serve: reply ${reply.id} could not be encoded`, error);
    return JSON.stringify({ type: 'reply', id: reply.id, ok: false, error: { code: 'INTERNAL', message: 'The reply could not be encoded.' } } satisfies ReplyMessage);
  }
}

/**
 * The body, or null when it is longer than `limit`. An oversized body is still read to its end (and
 * dropped) so that the client, which is still sending, receives the answer instead of a reset
 * connection; past MAX_DRAINED_BYTES the connection is cut.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_DRAINED_BYTES) {
    req.destroy();
    return Promise.resolve(null);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_DRAINED_BYTES) {
        req.destroy();
        return;
      }
      if (size <= limit) chunks.push(chunk);
      else chunks.length = 0;
    });
    req.on('end', () => resolve(size > limit ? null : Buffer.concat(chunks)));
    req.on('close', () => resolve(size > limit ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The bundled sample's folder, which the sample flow reads in any workspace (when it is there). */
async function sampleFolder(): Promise<string[]> {
  const dir = path.join(appPaths.resources(), 'sample');
  return (await exists(dir)) ? [dir] : [];
}

/** Whether something is at `p`, without blocking the server. */
function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  if (host !== '127.0.0.1') {
    throw new WhittleError('INVALID_INPUT', `Serve mode listens on 127.0.0.1 only (got "${String(host)}"); use an SSH tunnel to reach it from another machine.`);
  }
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new WhittleError('INVALID_INPUT', `The port must be a whole number from 0 to 65535 (got ${port}).`);
  }
  const { router, events } = options.app;
  const logger = options.logger ?? silentLogger;
  const rendererRoot = options.rendererRoot ?? appPaths.renderer();
  const token = newToken();
  const workspace = await createWorkspace([
    ...(options.roots && options.roots.length > 0 ? options.roots : [os.homedir()]),
    ...(options.app.home ? [options.app.home] : []),
    ...await sampleFolder(),
  ]);
  const sender: SenderInfo = { transport: 'serve', authenticated: true, workspace };
  let boundPort = 0;

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const sockets = new Set<WebSocket>();

  const downloads = new DownloadTickets();

  /** Folder downloads (download.ts): a ticket's zip needs no header; the rest of /api/download does. */
  async function handleDownload(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const ticket = /^\/api\/download\/([\w-]{16,64})$/.exec(url.pathname)?.[1];
    if (ticket) {
      if (req.method !== 'GET') return sendError(res, 405, { code: 'INVALID_INPUT', message: 'Use GET for a download.' });
      const target = downloads.take(ticket);
      if (!target) return sendError(res, 404, { code: 'NOT_FOUND', message: 'This download link was used already or has expired. Ask for the download again.' });
      return sendZip(res, target, SECURITY_HEADERS);
    }
    if (!tokenMatches(token, headerToken(req))) return sendError(res, 401, UNAUTHORIZED);
    try {
      if (req.method === 'GET') return await sendZip(res, await downloadTarget(workspace, url.searchParams.get('path')), SECURITY_HEADERS);
      if (req.method !== 'POST') {
        res.setHeader('Allow', 'GET, POST');
        return sendError(res, 405, { code: 'INVALID_INPUT', message: 'Use POST to ask for a download link, or GET with ?path=.' });
      }
      const body = await readBody(req, 64 << 10);
      let input: unknown;
      try {
        input = body ? (JSON.parse(body.toString('utf8')) as { path?: unknown }).path : undefined;
      } catch {
        input = undefined;
      }
      const target = await downloadTarget(workspace, input);
      sendJson(res, 200, { url: `/api/download/${downloads.issue(target)}`, fileName: zipName(target) });
    } catch (e) {
      if (res.headersSent) throw e;
      const shape = toErrorShape(e);
      sendError(res, shape.code === 'NOT_FOUND' ? 404 : shape.code === 'INVALID_INPUT' ? 400 : 500, shape);
    }
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (url.pathname === '/api/download' || url.pathname.startsWith('/api/download/')) return handleDownload(req, res, url);
    if (!tokenMatches(token, headerToken(req))) return sendError(res, 401, UNAUTHORIZED);
    if (url.pathname !== '/api/call') return sendError(res, 404, { code: 'NOT_FOUND', message: `No API endpoint ${url.pathname}; use POST /api/call.` });
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      return sendError(res, 405, { code: 'INVALID_INPUT', message: 'Use POST for /api/call.' });
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      return sendError(res, 415, { code: 'INVALID_INPUT', message: 'Send the call as JSON (Content-Type: application/json).' });
    }
    const body = await readBody(req, MAX_MESSAGE_BYTES);
    if (!body) {
      res.setHeader('Connection', 'close');
      return sendError(res, 413, { code: 'INVALID_INPUT', message: `A call may be at most ${MAX_MESSAGE_BYTES} bytes.` });
    }
    let message: unknown;
    try {
      message = decodeWire(body.toString('utf8'));
    } catch {
      return sendError(res, 400, { code: 'INVALID_INPUT', message: 'The request body is not valid JSON.' });
    }
    const reply = await router.dispatch(message, sender);
    const text = encodeReply(reply, logger);
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  async function handleStatic(req: IncomingMessage, res: ServerResponse, rawPath: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendError(res, 405, { code: 'INVALID_INPUT', message: `${req.method} is not allowed here.` });
    }
    if (!(await exists(path.join(rendererRoot, 'index.html')))) {
      res.writeHead(503, { ...SECURITY_HEADERS, 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(NOT_BUILT_PAGE);
      return;
    }
    const file = await resolveStaticFile(rendererRoot, rawPath);
    if (!file && rawPath === '/favicon.ico') {
      // Browsers ask for it on their own; without one in the bundle, answer "nothing" rather than an error.
      res.writeHead(204, SECURITY_HEADERS);
      res.end();
      return;
    }
    if (!file) {
      res.writeHead(404, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Not found');
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': contentTypeFor(file), 'Cache-Control': 'no-cache' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file)
      .on('error', (error) => {
        logger.log('error', `serve: could not read ${file}`, error);
        res.destroy();
      })
      .pipe(res);
  }

  // The raw request target, before URL normalisation removes `..` segments: traversal is refused, not
  // silently rewritten.
  function rawPathOf(req: IncomingMessage): string {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    return q >= 0 ? target.slice(0, q) : target;
  }

  const server = createServer((req, res) => {
    if (!sameSiteRequest(req)) return sendError(res, 403, FOREIGN_ORIGIN);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `http://127.0.0.1:${boundPort}`);
    } catch {
      return sendError(res, 400, { code: 'INVALID_INPUT', message: 'Malformed request URL.' });
    }
    const rawPath = rawPathOf(req);
    if (rawPath === '/api' || rawPath.startsWith('/api/')) {
      handleApi(req, res, url).catch((error: unknown) => {
        logger.log('error', 'serve: API request failed', error);
        if (!res.headersSent) sendError(res, 500, { code: 'INTERNAL', message: 'The request failed; the log has the details.' });
        else res.destroy();
      });
      return;
    }
    handleStatic(req, res, rawPath).catch((error: unknown) => {
      logger.log('error', 'serve: static request failed', error);
      if (!res.headersSent) sendError(res, 500, { code: 'INTERNAL', message: 'The request failed; the log has the details.' });
      else res.destroy();
    });
  });
  server.on('clientError', (_error, socket) => socket.destroy());

  server.on('upgrade', (req, socket, head) => {
    if (!sameSiteRequest(req)) return refuseUpgrade(socket, 403, 'Forbidden', FOREIGN_ORIGIN);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `http://127.0.0.1:${boundPort}`);
    } catch {
      return refuseUpgrade(socket, 400, 'Bad Request', { code: 'INVALID_INPUT', message: 'Malformed request URL.' });
    }
    if (url.pathname !== '/ws') return refuseUpgrade(socket, 404, 'Not Found', { code: 'NOT_FOUND', message: 'The WebSocket endpoint is /ws.' });
    if (!tokenMatches(token, upgradeToken(req, url))) return refuseUpgrade(socket, 401, 'Unauthorized', UNAUTHORIZED);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  wss.on('connection', (ws: WebSocket) => {
    sockets.add(ws);
    ws.on('close', () => sockets.delete(ws));
    ws.on('error', (error) => logger.log('debug', 'serve: socket error', error));
    ws.on('message', (data, isBinary) => {
      let message: unknown;
      try {
        if (isBinary) throw new Error('binary');
        message = decodeWire(data.toString());
      } catch {
        const reply: ReplyMessage = { type: 'reply', id: -1, ok: false, error: { code: 'INVALID_INPUT', message: 'Each message must be one JSON call message.' } };
        ws.send(JSON.stringify(reply));
        return;
      }
      void router.dispatch(message, sender).then((reply) => {
        if (ws.readyState === ws.OPEN) ws.send(encodeReply(reply, logger));
      });
    });
  });

  const unsubscribe = events.subscribe((event: EventMessage) => {
    if (sockets.size === 0) return;
    let text: string;
    try {
      text = encodeWire(event);
    } catch (error) {
      logger.log('error', `serve: event "${event.channel}" could not be encoded`, error);
      return;
    }
    for (const ws of sockets) {
      if (ws.readyState !== ws.OPEN) continue;
      if (event.channel === 'job.progress' && ws.bufferedAmount > PROGRESS_BACKPRESSURE_BYTES) continue;
      ws.send(text);
    }
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      unsubscribe();
      if (error.code === 'EADDRINUSE') reject(new WhittleError('IO', `Port ${port} is already in use. Pick another with --port, or 0 for any free port.`, { port }, { cause: error }));
      else reject(new WhittleError('IO', `Serve mode could not listen on ${host}:${port} (${error.message}).`, { port }, { cause: error }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address();
  boundPort = typeof address === 'object' && address ? address.port : port;
  server.on('error', (error) => logger.log('error', 'serve: server error', error));

  let closing: Promise<void> | null = null;
  return {
    url: `http://127.0.0.1:${boundPort}/#token=${token}`,
    token,
    port: boundPort,
    get connections() { return sockets.size; },
    roots: workspace.roots,
    close() {
      closing ??= new Promise<void>((resolve) => {
        unsubscribe();
        for (const ws of sockets) ws.close(1001, 'Whittle is shutting down');
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
        // Sockets that do not finish the close handshake promptly are cut.
        setTimeout(() => { for (const ws of sockets) ws.terminate(); }, 1000).unref();
      });
      return closing;
    },
  };
}
