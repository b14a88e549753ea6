/** The output folder layout chosen on a wizard's Run step: kept in the recipe's `output.layout`. */
import { OUTPUT_LAYOUTS, type OutputLayout } from '../../preload/recipe.ts';

export const LAYOUT_CHOICES: { value: OutputLayout; label: string }[] = [
  { value: 'plain', label: 'Plain: model.onnx with its tokenizer and configs' },
  { value: 'transformers-js', label: 'Transformers.js: adds config.json and onnx/model_<dtype>.onnx' },
  { value: 'genai', label: 'ONNX Runtime GenAI: adds genai_config.json' },
];

export function isOutputLayout(v: unknown): v is OutputLayout {
  return typeof v === 'string' && (OUTPUT_LAYOUTS as readonly string[]).includes(v);
}

/** The layout a stored recipe asked for (plain when it names none). */
export function layoutOfRecipe(recipe: unknown): OutputLayout {
  const layout = (recipe as { output?: { layout?: unknown } } | null | undefined)?.output?.layout;
  return isOutputLayout(layout) ? layout : 'plain';
}

/** `recipe` with `output.layout` set; plain leaves the recipe as the form built it. */
export function withLayout(recipe: unknown, layout: OutputLayout): unknown {
  if (layout === 'plain' || typeof recipe !== 'object' || recipe === null) return recipe;
  const r = recipe as { output?: Record<string, unknown> };
  return { ...r, output: { ...(r.output ?? {}), layout } };
}
