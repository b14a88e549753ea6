/**
 * Recipes: the one model of a job (ARCHITECTURE seam 5). A wizard writes one, the CLI reads one from a
 * file, the history stores it verbatim. Every object is strict: unknown keys are rejected.
 * This file only depends on zod so that main, preload and renderer can all share it.
 */
import { z } from 'zod';

const path = z.string().min(1, 'a path is required');

export const PerplexityConfig = z.strictObject({
  /** A UTF-8 text file. `documents`: blank-line separated paragraphs; `stream`: one long text. */
  text: path,
  protocol: z.enum(['documents', 'stream']).default('documents'),
  /** Window length L in tokens (documents are truncated to L; stream windows are L long). */
  window: z.int().min(8).max(1 << 16).default(256),
  /** Number of documents (or windows) evaluated, N. */
  maxSamples: z.int().min(1).max(1_000_000).default(400),
  /** Documents shorter than this many tokens are skipped (documents protocol). */
  minTokens: z.int().min(2).default(16),
});
export type PerplexityConfig = z.infer<typeof PerplexityConfig>;

export const SpeedConfig = z.strictObject({
  /** Prompt length P for the prefill timing. */
  promptTokens: z.int().min(1).max(8192).default(64),
  /** Tokens generated through the KV cache for the decode timing. */
  decodeTokens: z.int().min(1).max(4096).default(64),
  /** Timed repetitions after one warm-up. */
  repeats: z.int().min(1).max(50).default(3),
  /** Intra-op threads for onnxruntime; 0 = its default. */
  threads: z.int().min(0).max(256).default(0),
});
export type SpeedConfig = z.infer<typeof SpeedConfig>;

export const EvaluationConfig = z.strictObject({
  perplexity: PerplexityConfig.optional(),
  speed: SpeedConfig.optional(),
  /** Bytes on disk, parameters, bits per weight. Cheap; on unless turned off. */
  footprint: z.boolean().default(true),
  /** Greedy generations from these prompts (original beside compressed when there is a comparison). */
  samples: z.strictObject({
    prompts: z.array(z.string().min(1)).min(1).max(16),
    maxNewTokens: z.int().min(1).max(512).default(48),
  }).optional(),
});
export type EvaluationConfig = z.infer<typeof EvaluationConfig>;

export const QuantizeRtnStep = z.strictObject({
  type: z.literal('quantize'),
  method: z.literal('rtn'),
  bits: z.union([z.literal(2), z.literal(4), z.literal(8)]).default(4),
  blockSize: z.int().refine((b) => b >= 16 && b <= 256 && (b & (b - 1)) === 0, 'block size must be a power of two from 16 to 256').default(32),
  symmetric: z.boolean().default(false),
  /** MatMulNBits accuracy_level: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 (the fast CPU kernel). */
  accuracyLevel: z.int().min(0).max(4).default(4),
  format: z.enum(['matmulnbits', 'qdq']).default('matmulnbits'),
  /** Regular expressions on weight (initializer) names to keep in full precision, e.g. the LM head. */
  keep: z.array(z.string().min(1)).default([]),
});
export type QuantizeRtnStep = z.infer<typeof QuantizeRtnStep>;

export const Step = z.discriminatedUnion('type', [QuantizeRtnStep]);
export type Step = z.infer<typeof Step>;

export const Recipe = z.strictObject({
  version: z.literal(1).default(1),
  name: z.string().max(200).optional(),
  model: z.strictObject({ path }),
  /** A Hugging Face tokenizer.json (tokenizer_config.json beside it is read for BOS/EOS). */
  tokenizer: z.strictObject({ path }).optional(),
  steps: z.array(Step).default([]),
  evaluation: EvaluationConfig.default({ footprint: true }),
  output: z.strictObject({ dir: path.optional() }).optional(),
});
export type Recipe = z.infer<typeof Recipe>;
export type RecipeInput = z.input<typeof Recipe>;

/** The kind of job a recipe describes, for lists and filters. */
export function recipeKind(r: Pick<Recipe, 'steps'>): 'evaluate' | 'quantize' {
  return r.steps.some((s) => s.type === 'quantize') ? 'quantize' : 'evaluate';
}
