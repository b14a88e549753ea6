import { ESLint } from 'eslint';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { appRoot } from '../../../main/paths.ts';

// The layer rules live in eslint.config.js; these tests prove they bite and that the tree obeys them.
// typescript-eslint reads files from disk once when it thinks it runs a single lint (it assumes so on CI);
// the type-aware probe below lints text that is not on disk, so it needs the program kept up to date.
process.env.TSESTREE_SINGLE_RUN = 'false';
const eslint = new ESLint({ cwd: appRoot() });
// Snippets under made-up file names are outside the TypeScript projects, so the type-aware rules are off for them.
const untyped = new ESLint({
  cwd: appRoot(),
  overrideConfig: [{
    languageOptions: { parserOptions: { project: null } },
    rules: { '@typescript-eslint/no-floating-promises': 'off', '@typescript-eslint/no-misused-promises': 'off' },
  }],
});

async function lintText(code: string, file: string) {
  const [result] = await untyped.lintText(code, { filePath: path.join(appRoot(), file) });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layer rules', () => {
  it('forbid Node, Electron, native modules and main/ in the renderer', async () => {
    expect(await lintText("import fs from 'node:fs';\nexport const x = fs;\n", 'renderer/pages/Bad.ts')).toHaveLength(1);
    expect(await lintText("import { app } from 'electron';\nexport const x = app;\n", 'renderer/pages/Bad.ts')).toHaveLength(1);
    expect(await lintText("import Database from 'better-sqlite3';\nexport const x = Database;\n", 'renderer/pages/Bad.ts')).toHaveLength(1);
    expect(await lintText("import { appRoot } from '../../main/paths.ts';\nexport const x = appRoot;\n", 'renderer/pages/Bad.ts')).toHaveLength(1);
    expect(await lintText("import type { Metric } from '../../preload/contract.ts';\nexport type X = Metric;\n", 'renderer/pages/Good.ts')).toHaveLength(0);
  });

  it('forbid Electron and the database in engine modules', async () => {
    expect(await lintText("import { app } from 'electron';\nexport const x = app;\n", 'main/engine/bad.ts')).toHaveLength(1);
    expect(await lintText("import { openHistory } from '../history/db.ts';\nexport const x = openHistory;\n", 'main/engine/bad.ts')).toHaveLength(1);
  });

  it('forbid the renderer in main/, engine modules included', async () => {
    expect(await lintText("import { encodeWire } from '../../renderer/bridge/websocket.ts';\nexport const x = encodeWire;\n", 'main/server/bad.ts')).toHaveLength(1);
    expect(await lintText("import { encodeWire } from '../../../renderer/bridge/websocket.ts';\nexport const x = encodeWire;\n", 'main/engine/pipeline/bad.ts')).toHaveLength(1);
    expect(await lintText("import { encodeWire } from '../../preload/wire.ts';\nexport const x = encodeWire;\n", 'main/server/good.ts')).toHaveLength(0);
  });

  it('keep the shared preload modules to zod', async () => {
    for (const file of ['preload/methods.ts', 'preload/wire.ts']) {
      expect(await lintText("import { appRoot } from '../main/paths.ts';\nexport const x = appRoot;\n", file)).toHaveLength(1);
      expect(await lintText("import fs from 'node:fs';\nexport const x = fs;\n", file)).toHaveLength(1);
    }
  });

  it('flag floating and misused promises (type-aware)', async () => {
    // A real file of the project, linted with other content: the type checker sees the snippet.
    const file = path.join(appRoot(), 'renderer', 'lib', 'async-handler.ts');
    const code = "export async function save(): Promise<void> {}\nexport function later(): void { save(); }\nexport const handlers: { onClick: () => void }[] = [{ onClick: save }];\n";
    const [result] = await eslint.lintText(code, { filePath: file });
    const rules = result.messages.map((m) => m.ruleId);
    expect(rules).toContain('@typescript-eslint/no-floating-promises');
    expect(rules).toContain('@typescript-eslint/no-misused-promises');
  });

  it('the whole tree lints clean', async () => {
    const results = await eslint.lintFiles(['main', 'preload', 'renderer', 'tests', 'scripts']);
    const problems = results.flatMap((r) => r.messages.filter((m) => m.severity === 2).map((m) => `${path.relative(appRoot(), r.filePath)}:${m.line} ${m.ruleId}: ${m.message}`));
    expect(problems).toEqual([]);
  });
});
