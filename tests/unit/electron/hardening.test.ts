/**
 * The desktop app's hardening that can be checked without an Electron runtime: the fuses in the
 * packaging config, the navigation rule for pages and frames, and files.reveal showing (never opening).
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { appRoot } from '../../../main/paths.ts';
import { APP_ENTRY, navigationAllowed, revealInFolder } from '../../../main/electron/policy.ts';
import { tempDir } from '../../helpers/fixtures.ts';

const yaml = createRequire(path.join(appRoot(), 'package.json'))('js-yaml') as { load(text: string): unknown };

describe('electron-builder.yml', () => {
  const config = yaml.load(readFileSync(path.join(appRoot(), 'electron-builder.yml'), 'utf8')) as Record<string, unknown>;

  it('sets the fuses: no run-as-Node, no NODE_OPTIONS, no --inspect, only our integrity-checked app.asar', () => {
    expect(config.electronFuses).toEqual({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
    });
    // Asar integrity and "only from asar" mean nothing without an asar.
    expect(config.asar).toBe(true);
  });
});

describe('navigation', () => {
  it('lets our page go to our pages only, for the page and for every frame', () => {
    expect(navigationAllowed(`${APP_ENTRY}#/history`, APP_ENTRY)).toBe(true);
    for (const target of ['https://example.com/', 'file:///etc/passwd', 'http://127.0.0.1:8080/', 'javascript:alert(1)', 'whittle://other/index.html', 'about:blank']) {
      expect(navigationAllowed(target, APP_ENTRY), target).toBe(false);
    }
    // Nothing navigates into our page from somewhere else.
    expect(navigationAllowed(APP_ENTRY, 'https://example.com/')).toBe(false);
    expect(navigationAllowed(APP_ENTRY, null)).toBe(false);
  });

  it('blocks will-frame-navigate as it blocks will-navigate', () => {
    const security = readFileSync(path.join(appRoot(), 'main', 'electron', 'security.ts'), 'utf8');
    expect(security).toMatch(/on\('will-frame-navigate', \(event\) => \{\s*if \(!navigationAllowed\(event\.url, contents\.getURL\(\)\)\) event\.preventDefault\(\);/);
  });
});

describe('files.reveal on the desktop', () => {
  const scratch = tempDir('whittle-reveal-');
  afterAll(() => scratch.cleanup());

  it('shows files and folders in their folder and opens nothing', async () => {
    const shown: string[] = [];
    const reveal = revealInFolder((p) => shown.push(p));
    const file = path.join(scratch.dir, 'model.onnx');
    writeFileSync(file, 'x');
    expect(await reveal(file)).toEqual({ opened: true });
    expect(await reveal(scratch.dir)).toEqual({ opened: true });
    expect(shown).toEqual([file, scratch.dir]);
    const gone = await reveal(path.join(scratch.dir, 'gone'));
    expect(gone).toMatchObject({ opened: false, reason: expect.stringContaining('moved or deleted') });
    expect(shown).toHaveLength(2);
  });

  it('is the only way the Electron layer shows a path: shell.openPath is never called', () => {
    const dir = path.join(appRoot(), 'main', 'electron');
    for (const name of readdirSync(dir)) {
      expect(readFileSync(path.join(dir, name), 'utf8'), name).not.toMatch(/\bopenPath\s*\(/);
    }
  });
});
