/**
 * The evaluation's `accuracy` section (preload/recipe.ts AccuracyConfig): which examples a classifier is
 * scored on, whether a model is a classifier at all, and the metrics and details the runner records.
 *
 * The examples are the held-out split of the labelled file (splitLabelled with the section's `heldOut`
 * and `seed`, so a classification fine-tune with the same settings never trained on them), or a
 * separate test file read with the training file's classes. Everything is read and checked before any
 * work. A classifier is an encoder (detectGraphKind) whose class logits are [batch, classes]; a decoder
 * is scored on labelled prompts instead (prompt-accuracy.ts), its template and verbalizers checked
 * against the classes and the tokenizer up front (promptSettingsOf → promptPlan).
 */
import path from 'node:path';
import type { Metric } from '../../../preload/contract.ts';
import { DEFAULT_HELD_OUT, type AccuracyConfig, type LabelledConfig } from '../../../preload/recipe.ts';
import { readLabelled, splitLabelled, type LabelledData } from '../data/labelled.ts';
import { WhittleError } from '../errors.ts';
import { detectGraphKind } from '../model/layout.ts';
import type { OnnxModel } from '../onnx/proto-types.ts';
import type { AccuracyResult } from './accuracy.ts';
import type { PromptAccuracyResult, PromptSettings } from './prompt-accuracy.ts';

/** The training and held-out examples of a labelled file as a recipe names it. */
export async function labelledSplit(config: LabelledConfig, signal?: AbortSignal): Promise<{ all: LabelledData; train: LabelledData; test: LabelledData }> {
  const all = await readLabelled(path.resolve(config.file), {
    ...(config.textColumn !== undefined ? { textColumn: config.textColumn } : {}),
    ...(config.labelColumn !== undefined ? { labelColumn: config.labelColumn } : {}),
    ...(signal ? { signal } : {}),
  });
  const { train, test } = splitLabelled(all, config.heldOut, config.seed);
  return { all, train, test };
}

/** The examples the accuracy section scores (see the header). */
export async function accuracyExamples(config: AccuracyConfig, signal?: AbortSignal): Promise<LabelledData> {
  const columns = {
    ...(config.textColumn !== undefined ? { textColumn: config.textColumn } : {}),
    ...(config.labelColumn !== undefined ? { labelColumn: config.labelColumn } : {}),
  };
  if (config.testFile === undefined) {
    const { test } = await labelledSplit({ file: config.file, ...columns, heldOut: config.heldOut ?? DEFAULT_HELD_OUT, seed: config.seed }, signal);
    return test;
  }
  const training = await readLabelled(path.resolve(config.file), { ...columns, ...(signal ? { signal } : {}) });
  return readLabelled(path.resolve(config.testFile), { ...columns, classes: training.classes, ...(signal ? { signal } : {}) });
}

/** Whether `model`'s accuracy is measured by labelled prompts: a decoder (one with a state Whittle cannot feed is refused elsewhere). */
export function scoresByPrompts(model: OnnxModel): boolean {
  return detectGraphKind(model).startsWith('decoder');
}

/** The accuracy section's decoder settings (template, verbalizers, length normalisation). */
export function promptSettingsOf(config: AccuracyConfig): PromptSettings {
  return {
    ...(config.template !== undefined ? { template: config.template } : {}),
    ...(config.verbalizers !== undefined ? { verbalizers: config.verbalizers } : {}),
    ...(config.lengthNormalize !== undefined ? { lengthNormalize: config.lengthNormalize } : {}),
  };
}

/** Rank of a graph output's declared shape, or null when the graph does not say. */
function outputRank(model: OnnxModel, name: string): number | null {
  const out = model.proto.graph?.output?.find((o) => o.name === name);
  const dims = out?.type?.tensorType?.shape?.dim;
  return dims ? dims.length : null;
}

export type ClassifierCheck = { ok: true; classes: number | null } | { ok: false; reason: string };

/** Whether `model` gives class logits [batch, classes]: an encoder whose logits (or only output) has rank 2. */
export function classifierCheck(model: OnnxModel): ClassifierCheck {
  const kind = detectGraphKind(model);
  const name = path.basename(model.path);
  if (kind !== 'encoder') {
    return { ok: false, reason: kind.startsWith('decoder')
      ? `accuracy by class logits needs an encoder classifier; ${name} is a decoder (next-token logits), scored on labelled prompts instead.`
      : `accuracy needs a classifier (an encoder with class logits) or a decoder; ${name} is not a model Whittle recognises as either.` };
  }
  const outputs = (model.proto.graph?.output ?? []).map((o) => o.name ?? '');
  const logits = outputs.includes('logits') ? 'logits' : outputs[0];
  const rank = logits === undefined ? null : outputRank(model, logits);
  if (rank !== null && rank !== 2) {
    return { ok: false, reason: `accuracy needs a classifier (an encoder with class logits [batch, classes]); ${name}'s output ${logits} has ${rank} dimensions (a feature-extraction export). Fine-tune it on labelled data first (objective classify adds a classification head).` };
  }
  const out = model.proto.graph?.output?.find((o) => o.name === logits);
  const last = out?.type?.tensorType?.shape?.dim?.[1];
  const classes = last?.dimValue !== undefined && last.dimValue !== null ? Number(last.dimValue) : null;
  return { ok: true, classes: classes !== null && classes > 0 ? classes : null };
}

/** Refuses (INVALID_INPUT) a model that is not a classifier of the labelled data's classes. */
export function checkClassifierFor(model: OnnxModel, data: LabelledData): void {
  const check = classifierCheck(model);
  if (!check.ok) throw new WhittleError('INVALID_INPUT', check.reason.charAt(0).toUpperCase() + check.reason.slice(1), { model: model.path });
  if (check.classes !== null && check.classes !== data.classes.length) {
    throw new WhittleError('INVALID_INPUT', `${path.basename(model.path)} classifies into ${check.classes} classes but ${path.basename(data.path)} has ${data.classes.length} (${data.classes.join(', ')}). Evaluate on data with the model's classes.`, { model: model.path, classes: data.classes });
  }
}

/** accuracy, macro_f1 and the examples scored, for one subject ('model', 'original', 'result'). */
export function accuracyMetrics(r: AccuracyResult, subject: string): Metric[] {
  return [
    { name: 'accuracy', value: r.accuracy, unit: '', subject },
    { name: 'macro_f1', value: r.macroF1, unit: '', subject },
    { name: 'accuracy_examples', value: r.count, unit: 'examples', subject },
  ];
}

/**
 * What the details keep of an accuracy result (every prediction is left out: the confusion matrix says it);
 * a decoder's also say how it was prompted.
 */
export function accuracyDetails(r: AccuracyResult | PromptAccuracyResult, data: LabelledData): Record<string, unknown> {
  return {
    file: data.path, textColumn: data.textColumn, labelColumn: data.labelColumn,
    count: r.count, classes: r.classes, accuracy: r.accuracy, macroF1: r.macroF1,
    perClass: r.perClass.map((m, i) => ({ class: r.classes[i], ...m })), confusion: r.confusion, examples: r.examples,
    ...('prompt' in r ? { scoredBy: 'prompts', prompt: { ...r.prompt } } : { scoredBy: 'class-logits' }),
  };
}
