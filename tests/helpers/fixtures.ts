/** Paths of the shared test fixtures (../shared/fixtures beside the checkout) and scratch folders. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appRoot } from '../../main/paths.ts';

export const FIXTURES = path.resolve(appRoot(), '..', 'shared', 'fixtures');

export const fixture = (...parts: string[]): string => path.join(FIXTURES, ...parts);

export const STORIES = {
  model: fixture('stories260K', 'stories260K-kv.onnx'),
  tokenizer: fixture('stories260K', 'tokenizer.json'),
  text: fixture('text', 'tinystories_val_head.txt'),
};

/** A fresh temporary folder, removed by the returned function. */
export function tempDir(prefix = 'whittle-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
