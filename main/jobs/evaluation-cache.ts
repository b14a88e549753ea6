/**
 * The evaluation cache, main side (the engine never touches the database): metrics of a model measured
 * with given settings, so an unchanged model is not measured again.
 *
 *   key = (model content sha256, settings hash)
 *   model content sha256  the .onnx file's sha256, extended by its external data files (model-identity.ts)
 *   settings hash         sha256 of a canonical JSON of everything that changes the numbers: the
 *                         perplexity protocol and its text's sha256, the tokenizer's sha256 (and of the
 *                         tokenizer_config.json read beside it), the speed settings and the machine they
 *                         run on, whether the footprint is measured, the accuracy section (its settings,
 *                         a decoder's prompt settings included, and its labelled files' sha256) when
 *                         there is one, and this Whittle's version.
 * Sample generations are not metrics and are not cached: an evaluation that asks for samples always runs.
 * Evaluations with neither perplexity nor speed (a footprint alone) are cheap and not cached either.
 *
 * Which experiment stored an entry, and which experiment last evaluated a model, are read from the
 * experiments and their details (`details.evaluationCache.stored`), both written by the job service.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Metric } from '../../preload/contract.ts';
import type { Recipe } from '../../preload/recipe.ts';
import { AGREEMENT_METRICS } from '../engine/evaluate/agreement.ts';
import { modelIdentity, type ModelIdentity } from '../engine/evaluate/model-identity.ts';
import type { History } from '../history/history.ts';
import { appVersion } from '../paths.ts';
import type { ModelFileFactsCache } from './model-file.ts';

/** Raised when what is measured, or how, changes in a way the version number would not show. */
const CACHE_FORMAT = 1;

export interface CacheKey {
  /** The model's content sha256. */
  model: string;
  settings: string;
}

export interface CacheHit {
  metrics: Metric[];
  created: string;
  /** The experiment that stored the entry, when it is still in the history. */
  from: number | null;
}

/** What one stored entry is recorded as in the storing experiment's details. */
export interface StoredEntry extends CacheKey {
  subject: string;
}

export type CacheHistory = Pick<History, 'cacheGet' | 'cachePut' | 'latestEvaluation'>;

/** JSON with object keys sorted at every level, so equal settings always hash alike. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** Whether an evaluation is worth caching: it measures perplexity or speed. */
export function isCacheable(recipe: Recipe): boolean {
  return Boolean(recipe.evaluation.perplexity || recipe.evaluation.speed);
}

/**
 * An evaluate-only job the cache can answer by itself: no steps, no generations to show, and the recipe
 * does not ask for fresh figures (`evaluation.cache: false`). This is the only use of a cached entry: a
 * comparison never takes the original's figures from the cache, since speeds are only comparable when
 * timed side by side in the same job.
 */
export function answerableFromCache(recipe: Recipe): boolean {
  return recipe.steps.length === 0 && !recipe.evaluation.samples && recipe.evaluation.cache !== false && isCacheable(recipe);
}

/** Metrics of one subject, stored as subject 'model' (pair metrics such as KL are left out). */
export function metricsOfSubject(metrics: readonly Metric[], subject: string): Metric[] {
  return metrics.filter((m) => m.subject === subject && !AGREEMENT_METRICS.includes(m.name)).map((m) => ({ ...m, subject: 'model' }));
}

export class EvaluationCache {
  private readonly history: CacheHistory;
  private readonly files: ModelFileFactsCache;

  constructor(history: CacheHistory, files: ModelFileFactsCache) {
    this.history = history;
    this.files = files;
  }

  private hashFile = async (file: string): Promise<string> => (await this.files.facts(file)).sha256;

  /** The settings hash of a recipe's evaluation; null when it is not cached (see isCacheable). */
  async settingsHash(recipe: Recipe): Promise<string | null> {
    if (!isCacheable(recipe)) return null;
    const { perplexity, speed, footprint, accuracy } = recipe.evaluation;
    let tokenizer: Record<string, unknown> | null = null;
    if ((perplexity || accuracy) && recipe.tokenizer) {
      const file = path.resolve(recipe.tokenizer.path);
      const config = path.join(path.dirname(file), 'tokenizer_config.json');
      tokenizer = { sha256: await this.hashFile(file), config: (await stat(config).then(() => true, () => false)) ? await this.hashFile(config) : null };
    }
    const cpus = os.cpus();
    const settings = {
      cache: CACHE_FORMAT,
      whittle: appVersion(),
      perplexity: perplexity
        ? { protocol: perplexity.protocol, window: perplexity.window, maxSamples: perplexity.maxSamples, minTokens: perplexity.minTokens, text: await this.hashFile(path.resolve(perplexity.text)) }
        : null,
      tokenizer,
      speed: speed
        ? { ...speed, machine: { platform: process.platform, arch: process.arch, cpus: cpus.length, cpu: cpus[0]?.model ?? null } }
        : null,
      footprint,
      // Only with an accuracy section, so the keys of evaluations without one stay as they were.
      ...(accuracy ? {
        accuracy: {
          ...accuracy,
          file: await this.hashFile(path.resolve(accuracy.file)),
          testFile: accuracy.testFile !== undefined ? await this.hashFile(path.resolve(accuracy.testFile)) : null,
        },
      } : {}),
    };
    return createHash('sha256').update(canonicalJson(settings)).digest('hex');
  }

  /** The model's identity, reusing the job service's file hashes. */
  identity(modelPath: string): Promise<ModelIdentity> {
    return modelIdentity(modelPath, this.hashFile);
  }

  lookup(key: CacheKey): CacheHit | null {
    const hit = this.history.cacheGet(key.model, key.settings);
    return hit ? { metrics: hit.metrics, created: hit.created, from: hit.from } : null;
  }

  store(key: CacheKey, metrics: readonly Metric[], experimentId: number): void {
    if (metrics.length > 0) this.history.cachePut(key.model, key.settings, metrics, experimentId);
  }

  /** The latest finished evaluate-only experiment of the model with this .onnx sha256. */
  latestEvaluation(modelSha256: string): number | null {
    return this.history.latestEvaluation(modelSha256);
  }
}
