/**
 * GGUF tokenizer metadata (tokenizer.ggml.*) from a Hugging Face tokenizer.json (+ tokenizer_config.json):
 *
 *   SentencePiece-style BPE (`▁` for spaces, byte fallback; Llama 1/2, TinyLlama, stories260K)
 *     → tokenizer.ggml.model = "llama". llama.cpp's SPM tokenizer merges the adjacent pair whose
 *     concatenation has the highest score, so a piece made by merge r scores −r (HF applies merges in rank
 *     order: the same order); pieces no merge makes score 0 (never compared).
 *   Byte-level BPE (GPT-2 style: a ByteLevel pre-tokenizer; Llama 3, Qwen2, SmolLM)
 *     → tokenizer.ggml.model = "gpt2" with tokenizer.ggml.merges ("a b" strings) and pre "default".
 *   Unigram (a SentencePiece unigram model) → "llama" with the model's own scores.
 *
 * token_type (llama.cpp's llama_token_type): 1 normal, 2 unknown, 3 control (special added tokens),
 * 4 user defined (other added tokens), 6 byte (`<0xXX>` pieces).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { WhittleError } from '../errors.ts';
import { kv, type GgufKv } from './gguf-writer.ts';

export interface GgufVocabulary {
  model: 'llama' | 'gpt2';
  tokens: string[];
  scores: Float32Array;
  tokenTypes: Int32Array;
  merges: string[] | null;
  bosId: number | null;
  eosId: number | null;
  unkId: number | null;
  padId: number | null;
  addBos: boolean;
  addEos: boolean;
}

interface AddedToken { id: number; content: string; special?: boolean }
interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number> | [string, number][]; merges?: (string | [string, string])[]; unk_token?: string | null; unk_id?: number | null; byte_fallback?: boolean };
  added_tokens?: AddedToken[];
  pre_tokenizer?: unknown;
  decoder?: unknown;
}

const TYPE_NORMAL = 1, TYPE_UNKNOWN = 2, TYPE_CONTROL = 3, TYPE_USER = 4, TYPE_UNUSED = 5, TYPE_BYTE = 6;

function mentionsByteLevel(node: unknown): boolean {
  return JSON.stringify(node ?? null).includes('"ByteLevel"');
}

async function readJson<T>(file: string, what: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new WhittleError('NOT_FOUND', `No ${what} at ${file}. GGUF export needs the model's tokenizer.json: put it beside the model or pass --tokenizer.`, { path: file });
    }
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new WhittleError('INVALID_INPUT', `${file} is not valid JSON (${(e as Error).message}).`, { path: file });
  }
}

/** Reads tokenizer.json (and tokenizer_config.json beside it, when present) into GGUF vocabulary fields. */
export async function readGgufVocabulary(tokenizerJsonPath: string, vocabSize: number): Promise<GgufVocabulary> {
  const tj = await readJson<TokenizerJson>(tokenizerJsonPath, 'tokenizer.json');
  const config = await readJson<Record<string, unknown>>(path.join(path.dirname(tokenizerJsonPath), 'tokenizer_config.json'), 'tokenizer_config.json')
    .catch((e: unknown): Record<string, unknown> => { if (e instanceof WhittleError && e.code === 'NOT_FOUND') return {}; throw e; });
  const type = tj.model?.type;
  if (type !== 'BPE' && type !== 'Unigram') {
    throw new WhittleError('UNSUPPORTED_MODEL', `GGUF export supports BPE and Unigram tokenizers; ${tokenizerJsonPath} has model type ${String(type)}.`, { path: tokenizerJsonPath });
  }

  const tokens: (string | undefined)[] = new Array<string | undefined>(vocabSize);
  const scores = new Float32Array(vocabSize);
  const types = new Int32Array(vocabSize).fill(TYPE_NORMAL);
  const place = (id: number, text: string, score = 0): void => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new WhittleError('INVALID_INPUT', `${tokenizerJsonPath} has token id ${id} (“${text}”) outside the model's vocabulary of ${vocabSize}. Use the tokenizer the model was trained with.`, { path: tokenizerJsonPath, id, vocabSize });
    }
    tokens[id] = text;
    scores[id] = score;
  };

  if (type === 'Unigram') {
    const vocab = (tj.model?.vocab ?? []) as [string, number][];
    vocab.forEach(([text, score], id) => place(id, text, score));
    if (typeof tj.model?.unk_id === 'number') types[tj.model.unk_id] = TYPE_UNKNOWN;
  } else {
    const vocab = (tj.model?.vocab ?? {}) as Record<string, number>;
    for (const [text, id] of Object.entries(vocab)) place(id, text);
  }

  const merges = type === 'BPE' ? (tj.model?.merges ?? []).map((m) => (typeof m === 'string' ? m : `${m[0]} ${m[1]}`)) : [];
  const byteLevel = type === 'BPE' && (mentionsByteLevel(tj.pre_tokenizer) || mentionsByteLevel(tj.decoder));
  if (type === 'BPE' && !byteLevel) {
    // SentencePiece-style: the piece a merge makes scores −rank (first merge highest).
    const vocab = (tj.model?.vocab ?? {}) as Record<string, number>;
    merges.forEach((m, rank) => {
      const id = vocab[m.replace(' ', '')];
      if (id !== undefined && scores[id] === 0) scores[id] = -(rank + 1);
    });
  }
  for (let id = 0; id < vocabSize; id++) if (tokens[id] !== undefined && /^<0x[0-9A-Fa-f]{2}>$/.test(tokens[id]!) && !byteLevel) types[id] = TYPE_BYTE;
  const unkToken = type === 'BPE' ? tj.model?.unk_token ?? null : null;
  for (const a of tj.added_tokens ?? []) {
    place(a.id, a.content, scores[a.id] ?? 0);
    types[a.id] = a.content === unkToken ? TYPE_UNKNOWN : a.special ? TYPE_CONTROL : TYPE_USER;
  }
  for (let id = 0; id < vocabSize; id++) {
    if (tokens[id] === undefined) { tokens[id] = `[PAD${id}]`; types[id] = TYPE_UNUSED; }
    else if (unkToken !== null && tokens[id] === unkToken) types[id] = TYPE_UNKNOWN;
  }

  const idOf = (value: unknown): number | null => {
    const text = typeof value === 'string' ? value : value && typeof value === 'object' && 'content' in value ? String((value as { content: unknown }).content) : null;
    if (text === null) return null;
    const id = tokens.indexOf(text);
    return id >= 0 ? id : null;
  };
  const bosId = idOf(config.bos_token) ?? (byteLevel ? null : idOf('<s>'));
  const eosId = idOf(config.eos_token) ?? (byteLevel ? null : idOf('</s>'));
  return {
    model: byteLevel ? 'gpt2' : 'llama',
    tokens: tokens as string[],
    scores,
    tokenTypes: types,
    merges: byteLevel ? merges : null,
    bosId,
    eosId,
    unkId: unkToken !== null ? idOf(unkToken) : null,
    padId: idOf(config.pad_token),
    addBos: typeof config.add_bos_token === 'boolean' ? config.add_bos_token : !byteLevel && bosId !== null,
    addEos: config.add_eos_token === true,
  };
}

/** The tokenizer.ggml.* metadata of a vocabulary. */
export function vocabularyMetadata(v: GgufVocabulary): GgufKv[] {
  const out: GgufKv[] = [
    kv.str('tokenizer.ggml.model', v.model),
  ];
  if (v.model === 'gpt2') out.push(kv.str('tokenizer.ggml.pre', 'default'));
  out.push(kv.strings('tokenizer.ggml.tokens', v.tokens), kv.f32s('tokenizer.ggml.scores', v.scores), kv.i32s('tokenizer.ggml.token_type', v.tokenTypes));
  if (v.merges) out.push(kv.strings('tokenizer.ggml.merges', v.merges));
  if (v.bosId !== null) out.push(kv.u32('tokenizer.ggml.bos_token_id', v.bosId));
  if (v.eosId !== null) out.push(kv.u32('tokenizer.ggml.eos_token_id', v.eosId));
  if (v.unkId !== null) out.push(kv.u32('tokenizer.ggml.unknown_token_id', v.unkId));
  if (v.padId !== null) out.push(kv.u32('tokenizer.ggml.padding_token_id', v.padId));
  out.push(kv.bool('tokenizer.ggml.add_bos_token', v.addBos), kv.bool('tokenizer.ggml.add_eos_token', v.addEos));
  return out;
}
