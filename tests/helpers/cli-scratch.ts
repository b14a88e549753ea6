import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { splitDocuments } from '../../main/engine/data/text-file.ts';
import { STORIES, tempDir } from './fixtures.ts';

export interface CliScratch {
  scratch: ReturnType<typeof tempDir>;
  /** The CLI's --home, inside the scratch folder. */
  home: string;
  /** stories260K's paragraphs from the 400th on. */
  trainText: string;
  /** The paragraphs `heldOutOf` picks (the first 30 by default). */
  heldOut: string;
}

/** A scratch folder for CLI runs: a history home and the training and held-out texts cut from stories260K's text. */
export async function cliScratch(prefix: string, heldOutOf: (docs: string[]) => string[] = (docs) => docs.slice(0, 30)): Promise<CliScratch> {
  const scratch = tempDir(prefix);
  const home = path.join(scratch.dir, 'home');
  mkdirSync(home, { recursive: true });
  const docs = splitDocuments(await readFile(STORIES.text, 'utf8'));
  const trainText = path.join(scratch.dir, 'train.txt');
  const heldOut = path.join(scratch.dir, 'held-out.txt');
  writeFileSync(trainText, docs.slice(400).join('\n\n'));
  writeFileSync(heldOut, heldOutOf(docs).join('\n\n'));
  return { scratch, home, trainText, heldOut };
}
