/**
 * Hugging Face tokenizers (`tokenizer.json`, with `tokenizer_config.json` beside it for BOS/EOS), run by
 * the pure-JS @huggingface/tokenizers. Special tokens are never inserted by the tokenizer's own
 * post-processor: `encode` adds BOS itself when asked, so every protocol says exactly what it feeds.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { WhittleError } from '../errors.ts';
import { notAFileMessage, specialFileKind } from '../onnx/sniff.ts';
import { checkTokenizerJson, TokenizerFieldError } from './tokenizer-schema.ts';

export interface TextTokenizer {
  /** Token ids of `text`; with `addBos` (default: what tokenizer_config.json says) BOS comes first. */
  encode(text: string, options?: { addBos?: boolean }): number[];
  /** Text of `ids`, special tokens left out. */
  decode(ids: number[]): string;
  /** Largest token id + 1 (vocabulary plus added tokens). */
  vocabSize: number;
  bosId: number | null;
  eosId: number | null;
  /** Whether `encode` adds BOS when not told otherwise. */
  addBosByDefault: boolean;
  path: string;
}

const SUPPORTED_MODELS = ['BPE', 'WordPiece', 'Unigram'];
const EOS_NAMES = ['</s>', '<|endoftext|>', '<|end_of_text|>', '<|eot_id|>', '<|im_end|>', '<eos>'];

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function notATokenizer(file: string, why: string): WhittleError {
  return new WhittleError('INVALID_INPUT', `${path.basename(file)} is not a Hugging Face tokenizer.json (${why}). Choose the tokenizer.json that came with the model.`, { path: file });
}

/** The model type as the tokenizers library would infer it for files written without `type`. */
function modelType(model: Json): string | null {
  if (typeof model.type === 'string') return model.type;
  if (Array.isArray(model.vocab)) return 'Unigram';
  if (isObject(model.vocab) && 'continuing_subword_prefix' in model && 'unk_token' in model) return 'merges' in model ? 'BPE' : 'WordPiece';
  return null;
}

function vocabularySize(model: Json, added: unknown): number {
  let maxId = -1;
  if (Array.isArray(model.vocab)) maxId = model.vocab.length - 1;
  else if (isObject(model.vocab)) for (const id of Object.values(model.vocab)) if (typeof id === 'number' && id > maxId) maxId = id;
  if (Array.isArray(added)) for (const t of added) if (isObject(t) && typeof t.id === 'number' && t.id > maxId) maxId = t.id;
  return maxId + 1;
}

/** `bos_token` in tokenizer_config.json is a string or an AddedToken object. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

/** The special token a TemplateProcessing post-processor puts before a single sequence, if any. */
function templateBos(postProcessor: unknown): string | null {
  if (!isObject(postProcessor) || postProcessor.type !== 'TemplateProcessing' || !Array.isArray(postProcessor.single)) return null;
  const first = postProcessor.single[0];
  if (isObject(first) && isObject(first.SpecialToken) && typeof first.SpecialToken.id === 'string') return first.SpecialToken.id;
  return null;
}

async function readJson(file: string, what: 'tokenizer' | 'config'): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new WhittleError('NOT_FOUND', `The tokenizer file ${file} does not exist.`, { path: file });
    if (code === 'EISDIR') throw notATokenizer(file, 'it is a folder');
    throw new WhittleError('IO', `Could not read ${file}: ${(e as Error).message}`, { path: file }, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch {
    if (what === 'config') throw new WhittleError('INVALID_INPUT', `${path.basename(file)} beside the tokenizer is not valid JSON. Fix or remove it.`, { path: file });
    throw notATokenizer(file, 'it is not JSON');
  }
}

/** Text with letters, digits, punctuation, spacing and non-ASCII characters for the probe. */
const PROBE_TEXT = 'Once upon a time, 42 cats said: "Hello!"\n\tThe end. café — 日本 🙂';

/**
 * Encodes and decodes a sample text once, so a tokenizer that cannot run fails here, as invalid input,
 * rather than in the middle of a job.
 */
function probe(tokenizer: Tokenizer, file: string): void {
  try {
    const ids = tokenizer.encode(PROBE_TEXT, { add_special_tokens: false }).ids;
    const bad = ids.findIndex((id) => !Number.isSafeInteger(id) || id < 0);
    if (bad >= 0) throw new Error(`token ${bad + 1} of a sample text has no id (no unknown token for characters outside the vocabulary)`);
    if (ids.length > 0) tokenizer.decode(ids, { skip_special_tokens: true });
  } catch (e) {
    throw new WhittleError('INVALID_INPUT', `${path.basename(file)} is not a usable tokenizer: it fails on a sample text (${(e as Error).message}). Choose the tokenizer.json that came with the model.`, { path: file }, { cause: e });
  }
}

export async function loadTokenizer(tokenizerJsonPath: string): Promise<TextTokenizer> {
  const file = path.resolve(tokenizerJsonPath);
  const st = await stat(file).catch(() => null);
  if (!st) throw new WhittleError('NOT_FOUND', `The tokenizer file ${file} does not exist.`, { path: file });
  if (st.isDirectory()) throw notATokenizer(file, 'it is a folder');
  const special = specialFileKind(st);
  if (special) throw new WhittleError('INVALID_INPUT', notAFileMessage(file, special), { path: file, kind: special });
  const json = await readJson(file, 'tokenizer');
  if (!isObject(json)) throw notATokenizer(file, 'it is not a JSON object');
  if (!isObject(json.model)) throw notATokenizer(file, 'it has no "model" section');
  const type = modelType(json.model);
  if (type === null || !SUPPORTED_MODELS.includes(type)) {
    throw notATokenizer(file, `its model type ${type ?? '(unknown)'} is not one of ${SUPPORTED_MODELS.join(', ')}`);
  }
  try {
    checkTokenizerJson(json, type);
  } catch (e) {
    if (!(e instanceof TokenizerFieldError)) throw e;
    throw new WhittleError('INVALID_INPUT', `${path.basename(file)} is not a usable tokenizer: ${e.message}. Choose the tokenizer.json that came with the model.`, { path: file, field: e.field });
  }

  const configFile = path.join(path.dirname(file), 'tokenizer_config.json');
  const configStat = await stat(configFile).catch(() => null);
  const configJson = configStat?.isFile() ? await readJson(configFile, 'config') : {};
  const config: Json = isObject(configJson) ? configJson : {};

  let tokenizer: Tokenizer;
  try {
    const complete = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [], ...json };
    tokenizer = new Tokenizer(complete, config);
  } catch (e) {
    throw notATokenizer(file, (e as Error).message);
  }

  probe(tokenizer, file);

  const idOf = (token: string | null): number | null => (token === null ? null : tokenizer.token_to_id(token) ?? null);
  const bosToken = tokenContent(config.bos_token) ?? templateBos(json.post_processor);
  const bosId = idOf(bosToken);
  let eosId = idOf(tokenContent(config.eos_token));
  if (eosId === null) for (const name of EOS_NAMES) if ((eosId = idOf(name)) !== null) break;
  const addBosByDefault = bosId !== null && (typeof config.add_bos_token === 'boolean' ? config.add_bos_token : templateBos(json.post_processor) !== null);

  return {
    path: file,
    vocabSize: vocabularySize(json.model, json.added_tokens),
    bosId,
    eosId,
    addBosByDefault,
    encode(text, options = {}) {
      const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
      const addBos = options.addBos ?? addBosByDefault;
      return addBos && bosId !== null ? [bosId, ...ids] : ids;
    },
    decode(ids) {
      // The library refuses an empty list; no tokens (a generation that stopped at once) is no text.
      return ids.length === 0 ? '' : tokenizer.decode(ids, { skip_special_tokens: true });
    },
  };
}

/** A tokenizer whose ids reach past the model's logits cannot belong to that model. */
export function checkTokenizerFitsModel(tokenizer: Pick<TextTokenizer, 'vocabSize' | 'path'>, vocabSizeOfModel: number): void {
  if (tokenizer.vocabSize > vocabSizeOfModel) {
    throw new WhittleError(
      'INVALID_INPUT',
      `The tokenizer has ${tokenizer.vocabSize} tokens but the model predicts ${vocabSizeOfModel}: they do not belong together. Choose the tokenizer that came with the model.`,
      { tokenizer: tokenizer.path, tokenizerVocab: tokenizer.vocabSize, modelVocab: vocabSizeOfModel },
    );
  }
}
