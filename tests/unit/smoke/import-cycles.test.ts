import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { appRoot } from '../../../main/paths.ts';
import { findCycles, importGraph } from '../../helpers/import-graph.ts';

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'whittle-imports-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), text);
  }
  return root;
}

const named = (root: string, cycles: string[][]): string[][] => cycles.map((c) => c.map((f) => path.relative(root, f)));

describe('import cycles', () => {
  it('are found through type imports, re-exports and folders, and named in import order', () => {
    const root = tree({
      'a.ts': "import { b } from './b.ts';\nexport const a = b;\n",
      'b.ts': "import type { C } from './sub/c.ts';\nexport const b = 1 as unknown as C;\n",
      'sub/c.ts': "export * from '../a.ts';\nexport type C = number;\n",
      'd.ts': "import { a } from './a.ts';\n// import { d } from './d.ts';\nexport const d = a;\n",
      'self.ts': "export { self } from './self';\n",
    });
    expect(named(root, findCycles(importGraph([root]))).sort()).toEqual([['a.ts', 'b.ts', 'sub/c.ts', 'a.ts'], ['self.ts', 'self.ts']]);
  });

  it('are absent from an acyclic tree', () => {
    const root = tree({ 'a.ts': "import { b } from './b.ts';\nimport x from 'zod';\nexport const a = [b, x];\n", 'b.ts': 'export const b = 1;\n' });
    expect(findCycles(importGraph([root]))).toEqual([]);
  });

  it('do not exist in main/, preload/ or renderer/', () => {
    const root = appRoot();
    const graph = importGraph(['main', 'preload', 'renderer'].map((d) => path.join(root, d)));
    expect(graph.size).toBeGreaterThan(100);
    expect(named(root, findCycles(graph)).map((c) => c.join(' → '))).toEqual([]);
  });
});
