/**
 * The shape of the parts of a Hugging Face tokenizer.json that Whittle runs (model, normalizer,
 * pre_tokenizer, post_processor, decoder, added_tokens), checked before the tokenizer is built or copied.
 * The tokenizers library trusts its input: a `merges` that is not a list or a template that is not a list
 * fails only on first use ("merges.map is not a function", "type is not iterable"). Every check here names
 * the field (`decoder.decoders[2].pattern`) and what it should be.
 */

/** A field of tokenizer.json that does not have the shape the tokenizer needs. */
export class TokenizerFieldError extends Error {
  readonly field: string;
  readonly expected: string;

  constructor(field: string, expected: string) {
    super(`${field} ${expected}`);
    this.field = field;
    this.expected = expected;
    this.name = 'TokenizerFieldError';
  }
}

type Json = Record<string, unknown>;
type Check = (value: unknown, at: string) => void;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const fail = (at: string, expected: string): never => { throw new TokenizerFieldError(at, expected); };
const field = (at: string, key: string): string => (at === '' ? key : `${at}.${key}`);

const str: Check = (v, at) => { if (typeof v !== 'string') fail(at, 'must be a string'); };
const nonEmptyStr: Check = (v, at) => { if (typeof v !== 'string' || v.length === 0) fail(at, 'must be a non-empty string'); };
const bool: Check = (v, at) => { if (typeof v !== 'boolean') fail(at, 'must be true or false'); };
const num: Check = (v, at) => { if (typeof v !== 'number' || !Number.isFinite(v)) fail(at, 'must be a number'); };
const index: Check = (v, at) => { if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(at, 'must be a whole number ≥ 0'); };
const positive: Check = (v, at) => { if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) fail(at, 'must be a whole number ≥ 1'); };
const oneOf = (...values: string[]): Check => (v, at) => { if (typeof v !== 'string' || !values.includes(v)) fail(at, `must be one of ${values.join(', ')}`); };
/** Absent and null are allowed; anything else must pass `check`. */
const optional = (check: Check): Check => (v, at) => { if (v !== undefined && v !== null) check(v, at); };
const arrayOf = (check: Check): Check => (v, at) => {
  if (!Array.isArray(v)) fail(at, 'must be a list');
  (v as unknown[]).forEach((item, i) => check(item, `${at}[${i}]`));
};
/** An object whose listed keys pass their checks (other keys are left alone). */
const shape = (fields: Record<string, Check>): Check => (v, at) => {
  if (!isObject(v)) fail(at, 'must be an object');
  for (const [key, check] of Object.entries(fields)) check((v as Json)[key], field(at, key));
};
const pair = (first: Check, second: Check): Check => (v, at) => {
  if (!Array.isArray(v) || v.length !== 2) fail(at, 'must be a list of two items');
  first((v as unknown[])[0], `${at}[0]`);
  second((v as unknown[])[1], `${at}[1]`);
};

/** `{ "String": "…" }` or `{ "Regex": "…" }`. */
const pattern: Check = (v, at) => {
  if (!isObject(v)) fail(at, 'must be an object with "String" or "Regex"');
  const p = v as Json;
  if (p.String !== undefined) str(p.String, `${at}.String`);
  else if (p.Regex !== undefined) str(p.Regex, `${at}.Regex`);
  else fail(at, 'must have "String" or "Regex"');
};

/** A component chosen by its `type`: each known type's own fields. */
function byType(kinds: Record<string, Record<string, Check>>): Check {
  return (v, at) => {
    if (!isObject(v)) fail(at, 'must be an object with a "type"');
    const type = (v as Json).type;
    if (typeof type !== 'string' || !Object.hasOwn(kinds, type)) fail(field(at, 'type'), `must be one of ${Object.keys(kinds).join(', ')}`);
    shape(kinds[type as string])(v, at);
  };
}

const normalizer: Check = (v, at) => normalizerKinds(v, at);
const normalizerKinds = byType({
  BertNormalizer: { clean_text: optional(bool), handle_chinese_chars: optional(bool), strip_accents: optional(bool), lowercase: optional(bool) },
  Precompiled: { precompiled_charsmap: optional(str) },
  Sequence: { normalizers: arrayOf(normalizer) },
  Replace: { pattern, content: optional(str) },
  NFC: {}, NFD: {}, NFKC: {}, NFKD: {},
  Strip: { strip_left: optional(bool), strip_right: optional(bool) },
  StripAccents: {},
  Lowercase: {},
  Prepend: { prepend: str },
});

const preTokenizer: Check = (v, at) => preTokenizerKinds(v, at);
const preTokenizerKinds = byType({
  BertPreTokenizer: {},
  Sequence: { pretokenizers: arrayOf(preTokenizer) },
  Whitespace: {},
  WhitespaceSplit: {},
  Metaspace: { replacement: optional(nonEmptyStr), str_rep: optional(nonEmptyStr), prepend_scheme: optional(oneOf('always', 'first', 'never')), add_prefix_space: optional(bool) },
  ByteLevel: { add_prefix_space: optional(bool), trim_offsets: optional(bool), use_regex: optional(bool) },
  Split: { pattern, behavior: optional(oneOf('Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous')), invert: optional(bool) },
  Punctuation: { behavior: optional(str) },
  Digits: { individual_digits: optional(bool) },
  Replace: { pattern, content: optional(str) },
  FixedLength: { length: positive },
});

/** A template piece: the sequence (`A`, or `B` in a pair template) or a special token. */
const templatePiece = (sequences: string[]): Check => (v, at) => {
  if (!isObject(v)) fail(at, 'must be an object with "Sequence" or "SpecialToken"');
  const piece = v as Json;
  if (piece.Sequence !== undefined) shape({ id: oneOf(...sequences), type_id: index })(piece.Sequence, `${at}.Sequence`);
  else if (piece.SpecialToken !== undefined) shape({ id: str, type_id: index })(piece.SpecialToken, `${at}.SpecialToken`);
  else fail(at, 'must have "Sequence" or "SpecialToken"');
};

const postProcessor: Check = (v, at) => postProcessorKinds(v, at);
const postProcessorKinds = byType({
  TemplateProcessing: {
    single: arrayOf(templatePiece(['A'])),
    pair: optional(arrayOf(templatePiece(['A', 'B']))),
    special_tokens: optional(shape({})),
  },
  ByteLevel: { add_prefix_space: optional(bool), trim_offsets: optional(bool), use_regex: optional(bool) },
  BertProcessing: { sep: pair(str, index), cls: pair(str, index) },
  RobertaProcessing: { sep: pair(str, index), cls: pair(str, index) },
  Sequence: { processors: arrayOf(postProcessor) },
});

const decoder: Check = (v, at) => decoderKinds(v, at);
const decoderKinds = byType({
  ByteLevel: { add_prefix_space: optional(bool), trim_offsets: optional(bool), use_regex: optional(bool) },
  WordPiece: { prefix: str, cleanup: optional(bool) },
  Metaspace: { replacement: optional(nonEmptyStr), prepend_scheme: optional(oneOf('always', 'first', 'never')), add_prefix_space: optional(bool) },
  BPEDecoder: { suffix: optional(str) },
  CTC: { pad_token: optional(str), word_delimiter_token: optional(str), cleanup: optional(bool) },
  Sequence: { decoders: arrayOf(decoder) },
  Replace: { pattern, content: optional(str) },
  Fuse: {},
  Strip: { content: optional(str), start: optional(index), stop: optional(index) },
  ByteFallback: {},
});

/** token → id, every id a whole number. */
const vocabMap: Check = (v, at) => {
  if (!isObject(v)) fail(at, 'must be an object of token → id');
  for (const [token, id] of Object.entries(v as Json)) index(id, `${at}[${JSON.stringify(token)}]`);
};

/** Merges: all `"left right"` strings (the old form) or all `["left", "right"]` pairs. */
const merges: Check = (v, at) => {
  if (!Array.isArray(v)) fail(at, 'must be a list of merges');
  const list = v as unknown[];
  const pairs = Array.isArray(list[0]);
  list.forEach((m, i) => {
    const here = `${at}[${i}]`;
    if (pairs) pair(nonEmptyStr, nonEmptyStr)(m, here);
    else if (typeof m !== 'string' || !/^[^ ]+ [^ ]/.test(m)) fail(here, 'must be "left right" (two tokens and a space), like the merges before it');
  });
};

const unigramVocab: Check = (v, at) => {
  if (!Array.isArray(v) || v.length === 0) fail(at, 'must be a non-empty list of [piece, score]');
  (v as unknown[]).forEach((entry, i) => pair(str, num)(entry, `${at}[${i}]`));
};

const models: Record<string, Check> = {
  BPE: shape({
    vocab: vocabMap, merges, unk_token: optional(str), byte_fallback: optional(bool), fuse_unk: optional(bool),
    ignore_merges: optional(bool), dropout: optional(num), continuing_subword_prefix: optional(str), end_of_word_suffix: optional(str),
  }),
  WordPiece: shape({ vocab: vocabMap, unk_token: str, continuing_subword_prefix: str, max_input_chars_per_word: optional(positive) }),
  Unigram: (v, at) => {
    shape({ vocab: unigramVocab, unk_id: optional(index), byte_fallback: optional(bool) })(v, at);
    const m = v as Json;
    if (typeof m.unk_id === 'number' && m.unk_id >= (m.vocab as unknown[]).length) fail(field(at, 'unk_id'), `must be below the vocabulary size ${(m.vocab as unknown[]).length}`);
  },
};

const addedToken = shape({
  id: index, content: nonEmptyStr, special: optional(bool), normalized: optional(bool),
  single_word: optional(bool), lstrip: optional(bool), rstrip: optional(bool),
});

/**
 * Checks the parts of tokenizer.json Whittle runs, `modelType` being the model's type (given or inferred).
 * Throws TokenizerFieldError naming the first field that is wrong.
 */
export function checkTokenizerJson(json: Json, modelType: string): void {
  const model = models[modelType];
  if (!model) fail('model.type', `must be one of ${Object.keys(models).join(', ')}`);
  model(json.model, 'model');
  optional(normalizer)(json.normalizer, 'normalizer');
  optional(preTokenizer)(json.pre_tokenizer, 'pre_tokenizer');
  optional(postProcessor)(json.post_processor, 'post_processor');
  optional(decoder)(json.decoder, 'decoder');
  optional(arrayOf(addedToken))(json.added_tokens, 'added_tokens');
}
