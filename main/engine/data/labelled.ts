/**
 * Labelled text for classification: a text column and a label column read from TSV, CSV (RFC 4180
 * quoted fields, newlines inside quotes) or JSONL, one example per row, read as a stream of pieces.
 *
 * Columns are named by the caller or found: the text column is 'sentence', 'text', 'content' or
 * 'message' (first present), the label column 'label', 'labels', 'class' or 'category'. Labels may be
 * strings or integers; they become class ids 0…C−1 in a recorded order — numeric order when every label
 * is an integer, otherwise the order of first appearance — so the same file always maps the same way.
 * A held-out file is read with the training file's classes so that both map alike.
 *
 * Everything wrong is refused before any work, as INVALID_INPUT with what to do: an empty file, a
 * column that is not there (the columns found are listed), a row without a label (its line), one class.
 */
import path from 'node:path';
import { mulberry32 } from '../calibrate/prng.ts';
import { WhittleError, isWhittleError } from '../errors.ts';
import { readTextPieces } from './text-file.ts';
import type { TextTokenizer } from './tokenizer.ts';

export type LabelledFormat = 'tsv' | 'csv' | 'jsonl';

export interface LabelledExample {
  text: string;
  /** Class id, an index into `classes`. */
  label: number;
  /** 1-based line of the row in its file (the header is line 1 for TSV and CSV). */
  line: number;
}

export interface LabelledData {
  path: string;
  format: LabelledFormat;
  textColumn: string;
  labelColumn: string;
  /** Class names in id order (the label as written: '0', '1', 'spam', …). */
  classes: string[];
  examples: LabelledExample[];
}

export interface ReadLabelledOptions {
  format?: LabelledFormat;
  textColumn?: string;
  labelColumn?: string;
  /** The classes of the training file: a held-out file is mapped with them, and a label outside them is refused. */
  classes?: string[];
  signal?: AbortSignal;
}

const TEXT_NAMES = ['sentence', 'text', 'content', 'message'];
const LABEL_NAMES = ['label', 'labels', 'class', 'category'];

function invalid(message: string, details?: Record<string, unknown>): WhittleError {
  return new WhittleError('INVALID_INPUT', message, details);
}

export function formatOf(file: string): LabelledFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.tsv' || ext === '.tab') return 'tsv';
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return 'jsonl';
  throw invalid(`Whittle cannot tell the format of ${path.basename(file)}: name it .tsv, .csv or .jsonl, or give the format.`, { path: file });
}

/** Records of a delimited file from a stream of text pieces: each record is its fields and its first line. */
async function* delimitedRecords(pieces: AsyncIterable<string>, delimiter: string, quoted: boolean): AsyncGenerator<{ fields: string[]; line: number }> {
  let fields: string[] = [];
  let field = '';
  let inQuotes = false;
  let afterQuote = false;
  let line = 1;
  let recordLine = 1;
  let any = false;
  for await (const piece of pieces) {
    for (let i = 0; i < piece.length; i++) {
      const ch = piece[i];
      if (inQuotes) {
        if (ch === '"') { inQuotes = false; afterQuote = true; } else { if (ch === '\n') line++; field += ch; }
        continue;
      }
      if (quoted && ch === '"' && (field === '' || afterQuote)) {
        // A quote opens a quoted field, or (right after one closed) is an escaped quote "".
        if (afterQuote) field += '"';
        inQuotes = true;
        afterQuote = false;
        any = true;
        continue;
      }
      afterQuote = false;
      if (ch === delimiter) { fields.push(field); field = ''; any = true; continue; }
      if (ch === '\n' || ch === '\r') {
        if (ch === '\r' && piece[i + 1] === '\n') continue;
        fields.push(field);
        if (any || field !== '') yield { fields, line: recordLine };
        fields = []; field = ''; any = false;
        line++;
        recordLine = line;
        continue;
      }
      field += ch;
      any = true;
    }
  }
  if (inQuotes) throw invalid(`A quoted field opened on line ${recordLine} is never closed. Close the quote or remove it.`, { line: recordLine });
  fields.push(field);
  if (any || field !== '') yield { fields, line: recordLine };
}

/** Rows as (text, raw label) with their line; the columns resolved from the header (or the first object). */
interface RawRows { textColumn: string; labelColumn: string; rows: { text: string; label: string | undefined; line: number }[] }

function pickColumn(found: string[], wanted: string | undefined, names: string[], what: string, file: string): string {
  if (wanted !== undefined) {
    if (found.includes(wanted)) return wanted;
    throw invalid(`${path.basename(file)} has no column '${wanted}'; its columns are ${found.map((c) => `'${c}'`).join(', ')}. Name the ${what} column as it is written.`, { path: file, columns: found, wanted });
  }
  const lower = found.map((c) => c.trim().toLowerCase());
  for (const n of names) {
    const i = lower.indexOf(n);
    if (i >= 0) return found[i];
  }
  throw invalid(`${path.basename(file)} has no ${what} column that Whittle recognises (${names.map((n) => `'${n}'`).join(', ')}); its columns are ${found.map((c) => `'${c}'`).join(', ')}. Name the ${what} column.`, { path: file, columns: found });
}

async function readDelimited(file: string, format: 'tsv' | 'csv', options: ReadLabelledOptions): Promise<RawRows> {
  let header: string[] | null = null;
  let textAt = -1, labelAt = -1;
  let textColumn = '', labelColumn = '';
  const rows: RawRows['rows'] = [];
  for await (const { fields, line } of delimitedRecords(readTextPieces(file), format === 'tsv' ? '\t' : ',', format === 'csv')) {
    if (options.signal?.aborted) break;
    if (!header) {
      header = fields.map((f) => f.trim());
      textColumn = pickColumn(header, options.textColumn, TEXT_NAMES, 'text', file);
      labelColumn = pickColumn(header, options.labelColumn, LABEL_NAMES, 'label', file);
      textAt = header.indexOf(textColumn);
      labelAt = header.indexOf(labelColumn);
      continue;
    }
    const label = fields[labelAt]?.trim();
    rows.push({ text: (fields[textAt] ?? '').trim(), label: label === '' ? undefined : label, line });
  }
  if (!header) throw invalid(`${path.basename(file)} is empty. Choose a file with a header row and labelled rows.`, { path: file });
  return { textColumn, labelColumn, rows };
}

async function* lines(pieces: AsyncIterable<string>): AsyncGenerator<{ text: string; line: number }> {
  let rest = '';
  let line = 1;
  for await (const piece of pieces) {
    const parts = (rest + piece).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) yield { text: p, line: line++ };
  }
  if (rest !== '') yield { text: rest, line };
}

async function readJsonl(file: string, options: ReadLabelledOptions): Promise<RawRows> {
  let textColumn: string | null = null, labelColumn = '';
  const rows: RawRows['rows'] = [];
  for await (const { text, line } of lines(readTextPieces(file))) {
    if (options.signal?.aborted) break;
    if (text.trim() === '') continue;
    let row: unknown;
    try {
      row = JSON.parse(text);
    } catch {
      throw invalid(`Line ${line} of ${path.basename(file)} is not JSON. Each line of a JSONL file must be one object such as {"text": "…", "label": 1}.`, { path: file, line });
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) throw invalid(`Line ${line} of ${path.basename(file)} is not a JSON object. Write one object per line.`, { path: file, line });
    const obj = row as Record<string, unknown>;
    if (textColumn === null) {
      const found = Object.keys(obj);
      textColumn = pickColumn(found, options.textColumn, TEXT_NAMES, 'text', file);
      labelColumn = pickColumn(found, options.labelColumn, LABEL_NAMES, 'label', file);
    }
    if (!(textColumn in obj)) throw invalid(`Line ${line} of ${path.basename(file)} has no '${textColumn}'. Give every row its text.`, { path: file, line });
    const v = obj[labelColumn];
    const label = v === undefined || v === null || (typeof v === 'string' && v.trim() === '') ? undefined : typeof v === 'string' ? v.trim() : String(v as number | boolean);
    rows.push({ text: String(obj[textColumn] as string).trim(), label, line });
  }
  if (textColumn === null) throw invalid(`${path.basename(file)} is empty. Choose a file with one labelled object per line.`, { path: file });
  return { textColumn, labelColumn, rows };
}

/** Class names in id order: numeric order when every label is an integer, else order of first appearance. */
function classOrder(labels: string[]): string[] {
  const distinct = [...new Set(labels)];
  if (distinct.every((l) => /^-?\d+$/.test(l))) return distinct.sort((a, b) => Number(a) - Number(b));
  return distinct;
}

/** Reads a labelled file (see the header). */
export async function readLabelled(file: string, options: ReadLabelledOptions = {}): Promise<LabelledData> {
  const format = options.format ?? formatOf(file);
  let raw: RawRows;
  try {
    raw = format === 'jsonl' ? await readJsonl(file, options) : await readDelimited(file, format, options);
  } catch (e) {
    if (isWhittleError(e) && e.code === 'INVALID_INPUT' && / is empty\./.test(e.message)) {
      throw invalid(`${path.basename(file)} is empty. Choose a file with labelled rows (a text and a label column).`, { path: file });
    }
    throw e;
  }
  const name = path.basename(file);
  const missing = raw.rows.find((r) => r.label === undefined);
  if (missing) throw invalid(`Row on line ${missing.line} of ${name} has no label in column '${raw.labelColumn}'. Label every row or remove the unlabelled ones.`, { path: file, line: missing.line });
  if (raw.rows.length === 0) throw invalid(`${name} has a header but no rows. Add labelled rows.`, { path: file });
  const labels = raw.rows.map((r) => r.label ?? '');
  const classes = options.classes ?? classOrder(labels);
  const ids = new Map(classes.map((c, i) => [c, i]));
  const examples = raw.rows.map((r): LabelledExample => {
    const id = ids.get(r.label ?? '');
    if (id === undefined) throw invalid(`Row on line ${r.line} of ${name} has the label '${r.label}', which is not one of the training classes (${classes.join(', ')}). Use the same labels in both files.`, { path: file, line: r.line, classes });
    return { text: r.text, label: id, line: r.line };
  });
  if (!options.classes && classes.length < 2) throw invalid(`Every row of ${name} has the label '${classes[0]}': a classifier needs at least two classes. Choose a file with examples of each class.`, { path: file });
  return { path: file, format, textColumn: raw.textColumn, labelColumn: raw.labelColumn, classes, examples };
}

/**
 * A seeded held-out split: `heldOut` (a fraction in (0, 1) or a count) of the examples, drawn by a
 * Fisher–Yates shuffle from mulberry32(seed), go to `test`; the rest, in file order, to `train`. No
 * example is in both.
 */
export function splitLabelled(data: LabelledData, heldOut: number, seed: number): { train: LabelledData; test: LabelledData } {
  const n = data.examples.length;
  const k = heldOut < 1 ? Math.round(n * heldOut) : Math.floor(heldOut);
  if (!(k >= 1 && k < n)) throw invalid(`A held-out split of ${heldOut} leaves no examples on one side of ${n}. Choose a fraction between 0 and 1 or a count below ${n}.`, { heldOut, examples: n });
  const order = Array.from({ length: n }, (_, i) => i);
  const rand = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = rand.below(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const test = new Set(order.slice(0, k));
  const pick = (inTest: boolean): LabelledData => ({ ...data, examples: data.examples.filter((_, i) => test.has(i) === inTest) });
  return { train: pick(false), test: pick(true) };
}

export interface EncodedBatch {
  /** [B·T] token ids: [CLS] text [SEP], then padding (id `padId`). */
  inputIds: BigInt64Array;
  /** [B·T] 1 on tokens, 0 on padding. */
  attentionMask: BigInt64Array;
  /** [B] class ids. */
  labels: BigInt64Array;
  batch: number;
  length: number;
}

/** Special tokens of a BERT-style tokenizer: [CLS] (its BOS), [SEP] and [PAD]. */
export interface EncoderTokens { cls: number; sep: number; pad: number }

export function encoderTokens(tokenizer: TextTokenizer): EncoderTokens {
  const one = (s: string): number | null => { const ids = tokenizer.encode(s, { addBos: false }); return ids.length === 1 ? ids[0] : null; };
  const cls = tokenizer.bosId ?? one('[CLS]') ?? one('<s>');
  const sep = one('[SEP]') ?? tokenizer.eosId ?? one('</s>');
  const pad = one('[PAD]') ?? one('<pad>') ?? 0;
  if (cls === null || sep === null) throw invalid(`The tokenizer ${path.basename(tokenizer.path)} has no [CLS]/[SEP] tokens (or <s>/</s>): choose the encoder's own tokenizer.json.`, { path: tokenizer.path });
  return { cls, sep, pad };
}

/**
 * Tokenizes `examples` into one padded batch of `length` positions: [CLS] tokens… [SEP], cut to fit
 * (the [SEP] is kept), padded to `length`, or to the longest row when `length` is 'longest'. Rows past
 * the examples (a last, short batch padded to `batch` rows) are all padding with label 0; `rows` says
 * how many are real.
 */
export function encodeBatch(examples: LabelledExample[], tokenizer: TextTokenizer, tokens: EncoderTokens, length: number | 'longest', batch = examples.length): EncodedBatch & { rows: number } {
  const encoded = examples.map((e) => tokenizer.encode(e.text, { addBos: false }));
  const t = length === 'longest' ? Math.max(2, ...encoded.map((ids) => ids.length + 2)) : length;
  const inputIds = new BigInt64Array(batch * t).fill(BigInt(tokens.pad));
  const attentionMask = new BigInt64Array(batch * t);
  const labels = new BigInt64Array(batch);
  encoded.forEach((ids, b) => {
    const body = ids.slice(0, t - 2);
    const row = [tokens.cls, ...body, tokens.sep];
    for (let i = 0; i < row.length; i++) { inputIds[b * t + i] = BigInt(row[i]); attentionMask[b * t + i] = 1n; }
    labels[b] = BigInt(examples[b].label);
  });
  return { inputIds, attentionMask, labels, batch, length: t, rows: examples.length };
}
