/**
 * The desktop app's rules, tested under Node (there is no Electron runtime here): which senders may call,
 * which URLs are ours, which links may leave, and that the Electron entry points bundle.
 */
import path from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { createRouter } from '../../../main/api/router.ts';
import { APP_ENTRY, DESKTOP_CSP, desktopSenderCheck, isAppUrl, isSafeExternalUrl, senderFromIpc } from '../../../main/electron/policy.ts';
import { appRoot } from '../../../main/paths.ts';
import { calls, type CallName } from '../../../preload/contract.ts';
import type { Handlers } from '../../../main/api/router.ts';

function infoOnly(): Handlers {
  const all = {} as Record<CallName, unknown>;
  for (const name of Object.keys(calls) as CallName[]) all[name] = async () => ({ called: name });
  return all as Handlers;
}

describe('desktop policy', () => {
  it('recognises only our own pages', () => {
    expect(isAppUrl(APP_ENTRY)).toBe(true);
    expect(isAppUrl('whittle://app/assets/index.js')).toBe(true);
    for (const url of ['whittle://evil/index.html', 'whittle://user@app/index.html', 'https://app/index.html', 'file:///tmp/index.html', 'about:blank', '', 'not a url', undefined, null]) {
      expect(isAppUrl(url), String(url)).toBe(false);
    }
  });

  it('lets only https links open in the system browser', () => {
    expect(isSafeExternalUrl('https://onnx.ai/')).toBe(true);
    for (const url of ['http://example.com', 'file:///etc/passwd', 'javascript:alert(1)', 'smb://host/share', 'whittle://app/', 'nope']) {
      expect(isSafeExternalUrl(url), url).toBe(false);
    }
  });

  it('accepts calls only from the main frame of our window on our page', async () => {
    const mainFrame = { url: APP_ENTRY };
    const child = { url: APP_ENTRY };
    const ours = { id: 7, mainFrame };
    const router = createRouter(infoOnly(), { checkSender: desktopSenderCheck });
    const call = { type: 'call', id: 1, method: 'app.info', params: {} };

    const good = senderFromIpc({ sender: ours, senderFrame: mainFrame }, [7]);
    expect(good).toEqual({ transport: 'electron', frameUrl: APP_ENTRY, isMainFrame: true });
    expect((await router.dispatch(call, good)).ok).toBe(true);

    const refused = [
      senderFromIpc({ sender: ours, senderFrame: child }, [7]),                                   // a subframe
      senderFromIpc({ sender: { id: 8, mainFrame }, senderFrame: mainFrame }, [7]),               // another web contents
      senderFromIpc({ sender: ours, senderFrame: null }, [7]),                                    // frame gone
      senderFromIpc({ sender: { id: 7, mainFrame: { url: 'https://evil.example/' } }, senderFrame: null }, [7]),
    ];
    const navigatedAway = { url: 'https://evil.example/' };
    refused.push(senderFromIpc({ sender: { id: 7, mainFrame: navigatedAway }, senderFrame: navigatedAway }, [7]));
    for (const sender of refused) {
      const reply = await router.dispatch(call, sender);
      expect(reply.ok, JSON.stringify(sender)).toBe(false);
      if (!reply.ok) expect(reply.error.code).toBe('UNAUTHORIZED');
    }
  });

  it('has a CSP without inline or remote scripts', () => {
    expect(DESKTOP_CSP).toContain("script-src 'self'");
    expect(DESKTOP_CSP).toContain("default-src 'self'");
    expect(DESKTOP_CSP).not.toMatch(/script-src[^;]*(unsafe|https?:|\*)/);
    expect(DESKTOP_CSP).toContain("object-src 'none'");
  });
});

describe('desktop entry points', () => {
  const external = ['electron', 'better-sqlite3', 'onnxruntime-node', 'bufferutil', 'utf-8-validate'];
  async function bundle(entry: string): Promise<string> {
    const result = await build({
      entryPoints: [path.join(appRoot(), entry)], bundle: true, write: false, platform: 'node', target: 'node22', format: 'cjs',
      external, logLevel: 'silent', logOverride: { 'empty-import-meta': 'silent' },
    });
    return result.outputFiles[0].text;
  }
  const required = (code: string) => [...new Set([...code.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]))].sort();

  it('the preload bundles to a sandbox-safe script that needs only electron', async () => {
    const code = await bundle('preload/index.ts');
    expect(required(code)).toEqual(['electron']);
    expect(code).toContain('exposeInMainWorld');
  });

  it('the main process bundles, and loads neither onnxruntime nor the serve-mode server', async () => {
    const code = await bundle('main/electron/main.ts');
    const modules = required(code);
    expect(modules).toContain('electron');
    expect(modules).not.toContain('onnxruntime-node');
    expect(modules.filter((m) => !m.startsWith('node:') && !['electron', 'better-sqlite3'].includes(m))).toEqual([]);
    expect(code).not.toContain('WebSocketServer');
    expect(code).toMatch(/sandbox:\s*true/);
    expect(code).toMatch(/contextIsolation:\s*true/);
    expect(code).toMatch(/nodeIntegration:\s*false/);
  });
});
