/**
 * Labelled data on the command line: `--labels FILE [--text-column C] [--label-column C] [--held-out H]`
 * of `whittle train` (objective classify) and `whittle eval` (the accuracy section; for a decoder also
 * `--template T --verbalizers V --length-normalize`), and the checks made before a job is submitted: the
 * file's columns and classes (labelled.ts says what is wrong and lists the columns found), and the model
 * (training needs an encoder; accuracy a classifier, or a decoder whose prompts fit the classes).
 */
import path from 'node:path';
import type { AccuracyConfig, LabelledConfig } from '../../preload/recipe.ts';
import { parseVerbalizers, VerbalizerSyntaxError, type Verbalizers } from '../../preload/verbalizers.ts';
import { loadTokenizer } from '../engine/data/tokenizer.ts';
import { accuracyExamples, classifierCheck, labelledSplit, promptSettingsOf, scoresByPrompts } from '../engine/evaluate/accuracy-section.ts';
import { promptPlan } from '../engine/evaluate/prompt-accuracy.ts';
import { WhittleError } from '../engine/errors.ts';
import { readModel } from '../engine/onnx/reader.ts';
import { checkEncoder } from '../engine/train/classify-step.ts';
import { UsageError, type OptionValues } from './args.ts';

/** Flags that only mean something with --labels. */
export const LABEL_FLAGS = ['text-column', 'label-column', 'held-out'] as const;
/** `whittle eval --labels` flags for a decoder's labelled prompts. */
export const PROMPT_FLAGS = ['template', 'verbalizers', 'length-normalize'] as const;

/** `--verbalizers` (preload/verbalizers.ts): words per class in class order, or label=words pairs. */
function verbalizersFlag(raw: string): Verbalizers {
  try {
    return parseVerbalizers(raw);
  } catch (e) {
    if (e instanceof VerbalizerSyntaxError) throw new UsageError(`--verbalizers ${e.message} (got "${raw}").`);
    throw e;
  }
}

/** The decoder prompt settings the flags give (`\n` in --template is a newline). */
export function promptFromFlags(o: OptionValues): { template?: string; verbalizers?: Verbalizers; lengthNormalize?: boolean } {
  if (o.labels === undefined) {
    const stray = PROMPT_FLAGS.filter((f) => o[f] !== undefined && o[f] !== false);
    if (stray.length) throw new UsageError(`${stray.map((f) => `--${f}`).join(', ')} only appl${stray.length === 1 ? 'ies' : 'y'} with --labels FILE (labelled data scored by a decoder).`);
    return {};
  }
  return {
    ...(o.template !== undefined ? { template: String(o.template).replace(/\\n/g, '\n') } : {}),
    ...(o.verbalizers !== undefined ? { verbalizers: verbalizersFlag(String(o.verbalizers)) } : {}),
    ...(o['length-normalize'] === true ? { lengthNormalize: true } : {}),
  };
}

function heldOutOf(o: OptionValues): number {
  const raw = String(o['held-out']).trim();
  const n = /^(\d+\.?\d*|\.\d+)$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n > 0) || (n >= 1 && !Number.isInteger(n))) throw new UsageError(`--held-out needs a fraction below 1 (0.2) or a whole count of examples, got "${raw}".`);
  return n;
}

/** The labelled data the flags name (the held-out share and seed left to the schema's defaults when not given). */
export function labelsFromFlags(o: OptionValues): { file: string; textColumn?: string; labelColumn?: string; heldOut?: number; seed?: number } {
  if (o.labels === undefined) {
    const stray = LABEL_FLAGS.filter((f) => o[f] !== undefined);
    if (stray.length) throw new UsageError(`${stray.map((f) => `--${f}`).join(', ')} only appl${stray.length === 1 ? 'ies' : 'y'} with --labels FILE (labelled data).`);
    return { file: '' };
  }
  return {
    file: path.resolve(String(o.labels)),
    ...(o['text-column'] !== undefined ? { textColumn: String(o['text-column']) } : {}),
    ...(o['label-column'] !== undefined ? { labelColumn: String(o['label-column']) } : {}),
    ...(o['held-out'] !== undefined ? { heldOut: heldOutOf(o) } : {}),
    ...(typeof o.seed === 'number' ? { seed: o.seed } : {}),
  };
}

/** Training: the labelled file splits into a training and a held-out part with two classes or more, and the model is an encoder. */
export async function checkTrainingLabels(model: string, labels: LabelledConfig): Promise<void> {
  await checkEncoder(model);
  await labelledSplit(labels);
}

/**
 * Evaluation: the held-out examples can be read, and the model is a classifier, or a decoder whose
 * template and verbalizers fit the classes and the tokenizer.
 */
export async function checkAccuracyLabels(model: string, accuracy: AccuracyConfig, tokenizerPath?: string): Promise<void> {
  const graph = await readModel(model);
  if (scoresByPrompts(graph)) {
    const data = await accuracyExamples(accuracy);
    if (tokenizerPath === undefined) throw new WhittleError('INVALID_INPUT', "Accuracy on labelled prompts needs the model's tokenizer. Give it with --tokenizer FILE.", { model });
    promptPlan(promptSettingsOf(accuracy), data.classes, await loadTokenizer(tokenizerPath));
    return;
  }
  const check = classifierCheck(graph);
  if (!check.ok) throw new WhittleError('INVALID_INPUT', check.reason.charAt(0).toUpperCase() + check.reason.slice(1), { model });
  await accuracyExamples(accuracy);
}
