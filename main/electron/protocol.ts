/**
 * `whittle://app/…`: the renderer bundle (out/renderer) served to the window through a custom protocol,
 * so that the page has a proper origin and every response carries the CSP header. Paths that leave the
 * bundle are refused (the same resolution as serve mode).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { protocol } from 'electron';
import { contentTypeFor, resolveStaticFile } from '../server/static-files.ts';
import { APP_SCHEME, DESKTOP_CSP } from './policy.ts';

/** Must run before the app is ready. */
export function registerAppScheme(): void {
  protocol.registerSchemesAsPrivileged([
    { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
  ]);
}

const NOT_BUILT_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>Whittle</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>Whittle's interface has not been built yet</h1>
<p>Run <code>npm run build</code> in the Whittle folder, then start Whittle again.</p></body></html>`;

export function serveAppProtocol(rendererRoot: string): void {
  protocol.handle(APP_SCHEME, async (request) => {
    const headers = { 'Content-Security-Policy': DESKTOP_CSP, 'X-Content-Type-Options': 'nosniff' };
    const url = new URL(request.url);
    if (url.host !== 'app' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      return new Response('Not found', { status: 404, headers });
    }
    const file = await resolveStaticFile(rendererRoot, url.pathname);
    if (!file) {
      const missingBundle = (await resolveStaticFile(rendererRoot, '/')) === null;
      if (missingBundle) return new Response(NOT_BUILT_PAGE, { status: 503, headers: { ...headers, 'Content-Type': 'text/html; charset=utf-8' } });
      return new Response('Not found', { status: 404, headers });
    }
    const body = await readFile(file);
    return new Response(body, { status: 200, headers: { ...headers, 'Content-Type': contentTypeFor(path.basename(file)) } });
  });
}
