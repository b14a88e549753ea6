/**
 * Every check calibration can make before it opens an onnxruntime session, cheap enough for a step to
 * call first: the tokenizer loads and fits the model's vocabulary, the text file exists, is UTF-8 and
 * not empty, and it holds about N·L tokens. What was loaded is returned for reuse.
 */
import path from 'node:path';
import type { z } from 'zod';
import { CalibrationConfig } from '../../../preload/recipe.ts';
import { WhittleError } from '../errors.ts';
import { readTextFile } from '../data/text-file.ts';
import { checkTokenizerFitsModel, loadTokenizer, type TextTokenizer } from '../data/tokenizer.ts';
import { detectDecoderLayout } from '../model/layout.ts';
import { readModel } from '../onnx/reader.ts';
import type { ModelProto, OnnxModel } from '../onnx/proto-types.ts';
import { checkCalibrationCapacity, type SampleOptions, type TokenEstimate } from './sampling.ts';

export interface ValidateCalibrationInput {
  calibration: z.input<typeof CalibrationConfig>;
  /** The model, by path or already read: its vocabulary must cover the tokenizer's ids. */
  modelPath?: string;
  model?: OnnxModel | ModelProto;
  /** The tokenizer, as a tokenizer.json path or already loaded. */
  tokenizerPath?: string;
  tokenizer?: TextTokenizer;
  /** What needs the calibration (e.g. 'GPTQ'), for messages. */
  what?: string;
  /** Sample only from the last part of the text (see sampling.ts). */
  fromEnd?: number;
}

export interface PreparedCalibration {
  text: string;
  tokenizer: TextTokenizer;
  /** The model's vocabulary (logits width), when the graph tells it. */
  modelVocab: number | null;
  estimate: TokenEstimate;
  /** Options for sampleCalibration(text, tokenizer, options). */
  options: SampleOptions;
  calibration: CalibrationConfig;
}

export async function validateCalibration(input: ValidateCalibrationInput): Promise<PreparedCalibration> {
  const what = input.what ?? 'Calibration';
  const parsed = CalibrationConfig.safeParse(input.calibration);
  if (!parsed.success) {
    throw new WhittleError('INVALID_INPUT', `${what}: the calibration settings are invalid (${parsed.error.issues.map((i) => `${i.path.join('.') || 'calibration'}: ${i.message}`).join('; ')}).`);
  }
  const calibration = parsed.data;
  const tokenizerSource = input.tokenizer ?? input.tokenizerPath;
  if (tokenizerSource === undefined) {
    throw new WhittleError('INVALID_INPUT', `${what} needs calibration text, which needs a tokenizer. Add the model's tokenizer.json to the recipe.`);
  }
  const modelSource = input.model ?? input.modelPath;
  if (modelSource === undefined) throw new WhittleError('INTERNAL', `${what}: validateCalibration needs the model (model or modelPath).`);
  const model = typeof modelSource === 'string' ? await readModel(modelSource) : modelSource;
  const layout = detectDecoderLayout(model);
  const tokenizer = typeof tokenizerSource === 'string' ? await loadTokenizer(tokenizerSource) : tokenizerSource;
  const modelVocab = layout.vocabSize ?? null;
  if (modelVocab !== null) checkTokenizerFitsModel(tokenizer, modelVocab);
  const text = await readTextFile(calibration.text);
  const options: SampleOptions = {
    samples: calibration.samples, length: calibration.length, seed: calibration.seed, label: path.basename(calibration.text),
    ...(input.fromEnd !== undefined ? { fromEnd: input.fromEnd } : {}),
  };
  const estimate = checkCalibrationCapacity(text, tokenizer, options);
  return { text, tokenizer, modelVocab, estimate, options, calibration };
}
