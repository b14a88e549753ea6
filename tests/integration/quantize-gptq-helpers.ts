/**
 * Shared by the GPTQ, INT8 static and sensitivity tests: a calibration text taken from the END of the
 * TinyStories file (no overlap with the first 400 evaluation paragraphs), and perplexity under the
 * reference protocol (documents, L = 256, first 400 paragraphs: fp32 stories260K = 4.226658).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadTokenizer } from '../../main/engine/data/tokenizer.ts';
import { splitDocuments } from '../../main/engine/data/text-file.ts';
import { openDecoder } from '../../main/engine/evaluate/decoder-session.ts';
import { evaluatePerplexity } from '../../main/engine/evaluate/perplexity.ts';
import { quietContext } from '../../main/engine/job-context.ts';
import { STORIES } from '../helpers/fixtures.ts';

export const FP32_PERPLEXITY = 4.226658;
export const EVALUATION = { protocol: 'documents' as const, window: 256, maxSamples: 400, minTokens: 16 };

/** Writes the last `paragraphs` paragraphs of the TinyStories file to `dir` and returns the path. */
export function calibrationTextFromEnd(dir: string, paragraphs = 1000): string {
  const docs = splitDocuments(readFileSync(STORIES.text, 'utf8'));
  if (docs.length - paragraphs < 400) throw new Error('calibration would overlap the evaluation paragraphs');
  const file = path.join(dir, `calibration-tail-${paragraphs}.txt`);
  writeFileSync(file, `${docs.slice(-paragraphs).join('\n\n')}\n`);
  return file;
}

/** Perplexity of a stories260K-vocabulary model under the reference protocol. */
export async function storiesPerplexity(modelPath: string, workDir: string): Promise<number> {
  const tokenizer = await loadTokenizer(STORIES.tokenizer);
  const text = readFileSync(STORIES.text, 'utf8');
  const d = await openDecoder(modelPath);
  try {
    return (await evaluatePerplexity(d, tokenizer, text, EVALUATION, quietContext(workDir))).perplexity;
  } finally {
    await d.release();
  }
}
