/** The output flags every model-writing command shares: --out DIR and --layout L (recipe `output`). */
import path from 'node:path';
import { OUTPUT_LAYOUTS, type OutputLayout } from '../../preload/recipe.ts';
import type { OptionSpec, OptionValues } from './args.ts';

export const LAYOUT_OPTION: OptionSpec = {
  name: 'layout', type: 'string', value: 'L', choices: [...OUTPUT_LAYOUTS],
  description: 'the output folder layout: plain (default); transformers-js (adds config.json and onnx/model_<dtype>.onnx, as Transformers.js loads a folder); genai (adds genai_config.json for ONNX Runtime GenAI when the model had none)',
};

/** The recipe's `output` from --out and --layout, or undefined when neither is given. */
export function outputFromFlags(o: OptionValues): { dir?: string; layout?: OutputLayout } | undefined {
  if (o.out === undefined && o.layout === undefined) return undefined;
  return {
    ...(o.out !== undefined ? { dir: path.resolve(String(o.out)) } : {}),
    ...(o.layout !== undefined ? { layout: o.layout as OutputLayout } : {}),
  };
}
