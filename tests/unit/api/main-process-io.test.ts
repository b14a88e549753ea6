/**
 * The main process (services, jobs, server, history, desktop shell) does no synchronous file I/O, as the
 * lint rule in eslint.config.js requires: no `*Sync` function imported from node:fs or called on it.
 * The two files the rule leaves out (opening SQLite; the job-folder clean-up) are the only exceptions.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { appRoot } from '../../../main/paths.ts';

const MAIN_PROCESS = ['main/api', 'main/jobs', 'main/server', 'main/history', 'main/electron'];
const EXCEPTIONS = new Set(['main/history/open.ts', 'main/jobs/output-folder.ts']);

function sources(dir: string): string[] {
  return readdirSync(path.join(appRoot(), dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return sources(rel);
    return e.name.endsWith('.ts') ? [rel] : [];
  });
}

/** `*Sync` names imported from node:fs, and `fs.*Sync(` calls, in one source text. */
function syncCalls(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(?:node:)?fs'/g)) {
    found.push(...m[1].split(',').map((s) => s.trim().split(/\s+as\s+/)[0]).filter((n) => /Sync$/.test(n)));
  }
  for (const m of text.matchAll(/\bfs\.(\w+Sync)\s*\(/g)) found.push(m[1]);
  return found;
}

describe('no synchronous file I/O in the main process', () => {
  it('finds the pattern it looks for', () => {
    expect(syncCalls("import { createReadStream, statSync as s } from 'node:fs';\nfs.readFileSync(x);")).toEqual(['statSync', 'readFileSync']);
    expect(syncCalls("import { stat } from 'node:fs/promises';")).toEqual([]);
  });

  it('no main-process module outside the two exceptions uses a *Sync file call', () => {
    const files = [...MAIN_PROCESS.flatMap(sources), 'main/app.ts'].filter((f) => !EXCEPTIONS.has(f));
    expect(files.length).toBeGreaterThan(20);
    const offenders = files.flatMap((f) => syncCalls(readFileSync(path.join(appRoot(), f), 'utf8')).map((n) => `${f}: ${n}`));
    expect(offenders).toEqual([]);
  });
});
