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
  const parts: string[] = [];
  for await (const piece of readTextPieces(filePath)) parts.push(piece);
  return parts.join('');
}

/**
 * The text of a file as decoded pieces of about a megabyte, with the checks of readTextFile: the file
 * must exist and be a regular file, decode as UTF-8 without NUL bytes, and hold something other than
 * whitespace (an empty file is refused after its last piece). `chunkBytes` sets the size of a read.
 */
export async function* readTextPieces(filePath: string, chunkBytes = CHUNK_BYTES): AsyncGenerator<string> {
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
  const notText = () => new WhittleError('INVALID_INPUT', `${name} does not look like text: it is not UTF-8 or holds binary data. Choose a UTF-8 text file.`, { path: filePath });
  let handle;
  try {
    handle = await open(filePath, 'r');
  } catch (e) {
    throw new WhittleError('IO', `Could not open the text file ${filePath}: ${(e as Error).message}`, { path: filePath }, { cause: e });
  }
  let blank = true;
  const decoded = (piece: string): string => {
    if (blank && piece.trim().length > 0) blank = false;
    return piece;
  };
  try {
    const buffer = Buffer.allocUnsafe(chunkBytes);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, chunkBytes, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      if (chunk.includes(0)) throw notText();
      let piece: string;
      try {
        piece = decoder.decode(chunk, { stream: true });
      } catch {
        throw notText();
      }
      yield decoded(piece);
    }
    let last: string;
    try {
      last = decoder.decode();
    } catch {
      throw notText();
    }
    yield decoded(last);
  } finally {
    await handle.close();
  }

  if (blank) {
    throw new WhittleError('INVALID_INPUT', `The text file ${name} is empty. Choose a file with some text in it.`, { path: filePath });
  }
}

/** Blank-line separated paragraphs, trimmed, empty ones dropped. Windows and old Mac line ends count too. */
export function splitDocuments(text: string): string[] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((d) => d.trim())
    .filter((d) => d.length > 0);
}

/** A paragraph separator: a line end, blank or whitespace-only lines, a line end (after \r\n → \n). */
const SEPARATOR = /\n[ \t]*\n/g;

/**
 * The paragraphs of a text file, exactly as splitDocuments(readTextFile(file)) gives them, read and split
 * piece by piece so a large file is never held whole. `chunkBytes` sets the size of a read.
 */
export async function* readDocuments(filePath: string, options: { chunkBytes?: number } = {}): AsyncGenerator<string> {
  let pending = ''; // line ends normalized; the text after the last separator seen
  let carry = '';   // a \r that ended the previous piece: maybe the first half of a \r\n
  for await (const piece of readTextPieces(filePath, options.chunkBytes)) {
    let raw = carry + piece;
    carry = raw.endsWith('\r') ? '\r' : '';
    if (carry) raw = raw.slice(0, -1);
    // No complete separator is left in `pending`, so one can only start at its last line end or later.
    const from = Math.max(0, pending.lastIndexOf('\n'));
    pending += raw.replace(/\r\n?/g, '\n');
    SEPARATOR.lastIndex = from;
    let cut = -1;
    for (let m = SEPARATOR.exec(pending); m; m = SEPARATOR.exec(pending)) cut = m.index + m[0].length;
    if (cut < 0) continue;
    yield* splitDocuments(pending.slice(0, cut));
    pending = pending.slice(cut);
  }
  yield* splitDocuments(pending + (carry ? '\n' : ''));
}
