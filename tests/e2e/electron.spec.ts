import { _electron as electron, expect, test } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from './serve-helpers.ts';

// The real desktop app, when an Electron runtime exists on this machine. `require('electron')` returns
// the executable's path, or throws when the runtime was never downloaded (offline machines).
function electronRuntime(): { path: string } | { reason: string } {
  const probe = spawnSync(process.execPath, ['-e', "process.stdout.write(require('electron'))"], { cwd: projectRoot, encoding: 'utf8' });
  if (probe.status === 0 && probe.stdout) return { path: probe.stdout };
  const line = (probe.stderr || '').split('\n').find((l) => /Error/.test(l)) ?? 'require("electron") failed';
  return { reason: `no Electron runtime on this machine (${line.trim()})` };
}

const runtime = electronRuntime();

test('the desktop window opens sandboxed and lists the sample', async () => {
  test.skip('reason' in runtime, 'reason' in runtime ? runtime.reason : '');
  const home = mkdtempSync(path.join(os.tmpdir(), 'whittle-electron-'));
  const app = await electron.launch({
    executablePath: (runtime as { path: string }).path,
    args: [projectRoot, '--no-sandbox'],
    env: { ...process.env, WHITTLE_HOME: home },
  });
  try {
    const window = await app.firstWindow();
    await expect(window.getByTestId('sample-card')).toBeVisible();
    // No Node in the renderer: only the contract bridge is exposed.
    expect(await window.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe('undefined');
    expect(await window.evaluate(() => Object.keys((window as unknown as { whittle: object }).whittle).sort())).toEqual(['call', 'on', 'pathForFile']);
  } finally {
    await app.close();
    rmSync(home, { recursive: true, force: true });
  }
});
