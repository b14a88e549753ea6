/**
 * Plain UTF-8 text files for evaluation and calibration, and their split into documents.
 * A text file is checked before use: it must exist, be a regular file, decode as UTF-8 without NUL bytes,
 * and hold something other than whitespace.
 */
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from '../errors.ts';

/** Bytes read per chunk; the decoder is streaming, so multi-byte characters may straddle chunks. */
const CHUNK_BYTES = 1 << 20;

export async function readTextFile(filePath: string): Promise<string> {
  const name = path.basename(filePath);
  let info;
  try {
    info = await stat(filePath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new WhittleError('NOT_FOUND', `The text file ${filePath} does not exist. Choose an existing UTF-8 text file.`, { path: filePath });
    }
    throw new WhittleError('IO', `Could not read the text file ${filePath}: ${(e as Error).message}`, { path: filePath }, { cause: e });
  }
  if (info.isDirectory()) {
    throw new WhittleError('INVALID_INPUT', `${filePath} is a folder, not a text file. Choose a UTF-8 text file.`, { path: filePath });
  }
  if (!info.isFile()) {
    throw new WhittleError('INVALID_INPUT', `${filePath} is not a regular file. Choose a UTF-8 text file.`, { path: filePath });
  }

  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  const parts: string[] = [];
  const notText = () => new WhittleError('INVALID_INPUT', `${name} does not look like text: it is not UTF-8 or holds binary data. Choose a UTF-8 text file.`, { path: filePath });
  let handle;
  try {
    handle = await open(filePath, 'r');
  } catch (e) {
    throw new WhittleError('IO', `Could not open the text file ${filePath}: ${(e as Error).message}`, { path: filePath }, { cause: e });
  }
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      if (chunk.includes(0)) throw notText();
      try {
        parts.push(decoder.decode(chunk, { stream: true }));
      } catch {
        throw notText();
      }
    }
    try {
      parts.push(decoder.decode());
    } catch {
      throw notText();
    }
  } finally {
    await handle.close();
  }

  const text = parts.join('');
  if (text.trim().length === 0) {
    throw new WhittleError('INVALID_INPUT', `The text file ${name} is empty. Choose a file with some text in it.`, { path: filePath });
  }
  return text;
}

/** Blank-line separated paragraphs, trimmed, empty ones dropped. Windows and old Mac line ends count too. */
export function splitDocuments(text: string): string[] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((d) => d.trim())
    .filter((d) => d.length > 0);
}
