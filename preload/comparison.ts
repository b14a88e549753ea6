/**
 * The shape of a comparison of 2–8 experiments (`history.compare`, `whittle history compare`, reports):
 * each run's facts and metrics, the metrics side by side with their change against a baseline run, the
 * recipe paths that differ, the generations by prompt, the per-weight series, and the notes that say
 * where numbers are not like for like. Computed by main/history/compare.ts; types only here, so the
 * renderer and the contract can name them.
 */
import type { MetricDirection } from './metric-direction.ts';

export type { MetricDirection } from './metric-direction.ts';

/** The fewest and most experiments one comparison holds. */
export const COMPARE_MIN = 2;
export const COMPARE_MAX = 8;

export interface MeasuredValue { value: number; unit: string }

/** How a run was evaluated, as far as its details and recipe record it. */
export interface EvaluationFacts {
  /** Content sha256 of the model the run started from (the original of a compression, or the model evaluated). */
  startedFrom: string | null;
  tokenizer: string | null;
  perplexity: {
    text: string;
    /** Characters in the text file when it was read (a changed file under the same path shows here). */
    textChars: number | null;
    protocol: string;
    window: number | null;
    maxSamples: number | null;
    minTokens: number | null;
    /** What was actually scored. */
    samples: number | null;
    predictedTokens: number | null;
  } | null;
  speed: {
    promptTokens: number | null;
    decodeTokens: number | null;
    repeats: number | null;
    /** Threads asked (0: onnxruntime's choice) and used. */
    threads: number | null;
    threadsUsed: number | null;
  } | null;
  accuracy: { file: string; testFile: string | null; heldOut: number | null; seed: number | null; maxLength: number | null } | null;
  generations: { prompts: string[]; maxNewTokens: number | null } | null;
}

export interface ComparedExperiment {
  id: number;
  name: string;
  kind: string;
  status: string;
  created: string;
  modelPath: string;
  modelSha256: string | null;
  /** What the run did, in a few words ('GPTQ 4-bit b32', 'Magnitude 50 %', 'Evaluate'). */
  method: string;
  /** Whose numbers `metrics` holds: the compressed result, or the model a run evaluated alone. */
  subject: 'result' | 'model';
  /** The run's own numbers (result side), by metric name. */
  metrics: Record<string, MeasuredValue>;
  /** The original's numbers measured in the same job (compressions only), by metric name. */
  original: Record<string, MeasuredValue>;
  evaluation: EvaluationFacts;
  tags: string[];
  notes: string;
}

/** 'within-spread': a timing whose change lies inside the min–max of the runs' repeats (no measurable difference). */
export type Verdict = 'better' | 'worse' | 'same' | 'within-spread' | null;

/** One run's value of one metric and its change against the baseline run. */
export interface MetricCell {
  id: number;
  value: number | null;
  /** value − baseline's value; null when either is missing. */
  difference: number | null;
  /** The difference in percent of the baseline's value; null when either is missing or the baseline is 0. */
  percent: number | null;
  verdict: Verdict;
  /**
   * False when this run and the baseline measured the metric differently (other text, protocol or
   * settings): the change is not like for like. `reasons` are the notes' aspects that apply.
   */
  comparable: boolean;
  reasons: ComparabilityAspect[];
}

export type MetricGroup = 'quality' | 'speed' | 'size' | 'other';

export interface ComparedMetric {
  name: string;
  unit: string;
  direction: MetricDirection | null;
  group: MetricGroup;
  /** One cell per experiment, in the comparison's order (the baseline's own cell has difference 0). */
  cells: MetricCell[];
}

/** A recipe field whose value differs between runs: its JSON path and each run's value as JSON text (null: absent). */
export interface RecipeDifference {
  path: string;
  values: (string | null)[];
}

export type ComparabilityAspect = 'model' | 'text' | 'tokenizer' | 'protocol' | 'speed' | 'accuracy' | 'generations';

/** Where runs differ in how they were measured. */
export interface ComparabilityNote {
  aspect: ComparabilityAspect;
  /** 'warning': numbers of some pairs are not like for like; 'info': a caution that holds for every pair. */
  severity: 'warning' | 'info';
  /** The metrics this concerns. */
  metrics: string[];
  /** The runs, grouped by what they used (each group in words). */
  groups: { ids: number[]; value: string }[];
  /** Every pair of runs in different groups. */
  pairs: [number, number][];
  message: string;
}

/** The generations of one prompt, one per run (null: the run did not generate from this prompt). */
export interface GenerationRow {
  prompt: string;
  /** The original model's text, when a run measured it (the first run that did). */
  original: string | null;
  texts: (string | null)[];
}

export type WeightSeriesKind = 'sensitivity' | 'gptq-loss' | 'quantization-error' | 'sparsity' | 'sparsegpt-loss';

/** A per-weight figure of the runs that have it, aligned on the weight names (union, first run's order first). */
export interface WeightSeries {
  kind: WeightSeriesKind;
  label: string;
  unit: string;
  direction: MetricDirection;
  weights: string[];
  /** The runs that have this series. */
  ids: number[];
  /** values[i][j]: run ids[i], weight weights[j]; null where that run has no figure for the weight. */
  values: (number | null)[][];
}

export interface Comparison {
  /** The run the others are measured against. */
  baseline: number;
  ids: number[];
  experiments: ComparedExperiment[];
  metrics: ComparedMetric[];
  recipeDiff: RecipeDifference[];
  notes: ComparabilityNote[];
  generations: GenerationRow[];
  series: WeightSeries[];
}
