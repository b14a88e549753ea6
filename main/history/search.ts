/**
 * What a user types into the history's search box, as an FTS5 MATCH expression over experiments_fts
 * (name, kind, model, notes, tags; tokenizer unicode61 with diacritics removed).
 *
 * - Words are ANDed; each is a prefix, so results narrow as the user types ("gptq 4b" finds "GPTQ 4-bit").
 * - Every word is quoted (its `"` doubled), so FTS5 syntax in the input ("AND", "-", "*", ":", "^",
 *   parentheses, unbalanced quotes) is searched as text and never makes the query fail. Inside quotes the
 *   tokenizer splits the word as it split the indexed text: "4-bit" and "tiny_llama" become phrases.
 * - A word where digits and letters meet ("4b", "q4", "int8") also matches as a phrase split at that
 *   boundary, since "4-bit" was indexed as the two tokens "4" and "bit" but "stories260K" as one token.
 *   Such a word matches either way: ("4b"* OR "4 b"*).
 * - Case and diacritics do not matter: the query goes through the same tokenizer as the indexed text.
 * - A word of 3 characters or more also matches inside names and model paths (experiments_substring,
 *   trigram tokenizer): "260K" finds "stories260K", indexed above as the single token "stories260k".
 */

/** Letters, digits, marks and private-use characters: what unicode61 keeps inside tokens. */
const TOKEN_CHAR = /[\p{L}\p{N}\p{M}\p{Co}]/u;

function quoted(text: string): string {
  return `"${text.replace(/"/g, '""')}"*`;
}

/** The word split where digits meet letters ("int4b" → "int 4 b"), or the word itself. */
function splitDigits(word: string): string {
  return word.replace(/(\p{N})(?=\p{L})|(\p{L})(?=\p{N})/gu, '$1$2 ');
}

/** The search's words: whitespace-separated pieces that hold at least one character FTS indexes. */
export function searchWords(text: string): string[] {
  return text.split(/\s+/u).filter((w) => TOKEN_CHAR.test(w));
}

/** One word's MATCH expression over experiments_fts: a prefix, or either prefix where digits meet letters. */
function wordExpression(word: string): string {
  const split = splitDigits(word);
  return split === word ? quoted(word) : `(${quoted(word)} OR ${quoted(split)})`;
}

/** The shortest word searched inside names and models: trigram indexes cannot find fewer characters. */
export const MIN_SUBSTRING = 3;

export interface SearchTerm {
  /** MATCH expression over experiments_fts (whole words, prefixes). */
  words: string;
  /** MATCH expression over experiments_substring (anywhere in a name or model path), or null for a short word. */
  substring: string | null;
}

/**
 * Each word of `text` as a term: an experiment matches the search when every term matches, in
 * experiments_fts as a word or, for words of MIN_SUBSTRING characters or more, in experiments_substring.
 */
export function searchTerms(text: string): SearchTerm[] {
  return searchWords(text).map((word) => ({
    words: wordExpression(word),
    substring: [...word].length >= MIN_SUBSTRING ? `"${word.replace(/"/g, '""')}"` : null,
  }));
}

/**
 * The MATCH expression for `text`, or null when it has no word FTS can find (empty, or only
 * punctuation such as "%" — the list then matches the text literally, see history list).
 */
export function ftsMatchExpression(text: string): string | null {
  const words = searchWords(text);
  if (words.length === 0) return null;
  return words.map(wordExpression).join(' AND ');
}
