/**
 * The one name an experiment gets when the user gives none: what was done (method and bits, sparsity,
 * schedule) and to which model, e.g. "GPTQ 4-bit g32 · stories260K". The job service, the CLI and the
 * wizards all name experiments with it, and the job's output folder is made from the name.
 * Only depends on the recipe schema, so main, preload and renderer share it.
 */
import { effectiveSparsity, Recipe, type RecipeInput, type Step } from './recipe.ts';

/** File stems that say nothing about the model (Hugging Face / Optimum exports): the folder names it. */
const GENERIC_STEMS = new Set(['model', 'decoder_model', 'decoder_model_merged', 'decoder_with_past_model', 'model_quantized', 'model_optimized']);

/** A model's short name: its file name without `.onnx`, or its folder's name for a generic file name. */
export function modelShortName(modelPath: string): string {
  const parts = modelPath.trim().split(/[\\/]/).filter(Boolean);
  const file = parts.at(-1) ?? modelPath;
  const stem = file.replace(/\.onnx$/i, '');
  if (GENERIC_STEMS.has(stem.toLowerCase()) && parts.length >= 2) return parts.at(-2)!;
  return stem || file;
}

const percent = (fraction: number): string => `${Number((fraction * 100).toFixed(1))}%`;

function schedule(s: { steps?: number | undefined; epochs?: number | undefined }): string {
  if (s.steps !== undefined) return `${s.steps} steps`;
  if (s.epochs !== undefined) return `${s.epochs} epoch${s.epochs === 1 ? '' : 's'}`;
  return '';
}

/** One step in a few words: "GPTQ 4-bit g32", "Wanda 50%", "SparseGPT 2:4 + 4-bit", "Train 200 steps". */
export function stepLabel(step: Step): string {
  switch (step.type) {
    case 'quantize':
      switch (step.method) {
        case 'rtn': case 'gptq':
          return `${step.method.toUpperCase()} ${step.bits}-bit g${step.blockSize}${step.overrides.length > 0 ? ' mixed' : ''}`;
        case 'qat': return `KD-QAT ${step.bits}-bit g${step.blockSize}${step.freezeRoles.length > 0 ? ` freeze ${step.freezeRoles.join(',')}` : ''}`;
        case 'fp16': return 'FP16';
        case 'int8-dynamic': return 'INT8 dynamic';
        case 'int8-static': return `INT8 static ${step.rangeMethod}`;
      }
      break;
    case 'prune': {
      if (step.method === 'structured') {
        const amount = step.ratio !== undefined ? percent(step.ratio) : `×${step.count}`;
        return `Structured ${step.target} ${amount}`;
      }
      const name = step.method === 'magnitude' ? 'Magnitude' : step.method === 'wanda' ? 'Wanda' : 'SparseGPT';
      const how = step.pattern ?? percent(effectiveSparsity(step));
      const owl = step.allocation === 'owl' ? ' OWL' : '';
      const quant = step.method === 'sparsegpt' && step.quantize ? ` + ${step.quantize.bits}-bit` : '';
      return `${name} ${how}${owl}${quant}`;
    }
    case 'sensitivity':
      return `Sensitivity ${step.quantize.method.toUpperCase()} ${step.quantize.bits}-bit`;
    case 'train':
      return `${step.objective === 'classify' ? 'Fine-tune classifier' : 'Fine-tune'} ${schedule(step)}`.trim();
    case 'distill': {
      const student = 'blocks' in step.student ? ` blocks ${step.student.blocks.join(',')}` : 'model' in step.student ? ` into ${modelShortName(step.student.model)}` : '';
      return `Distill${student} ${schedule(step.schedule)}`.trim();
    }
  }
  return 'Step';
}

const MAX_NAME = 200;

/** The experiment's name: its steps (joined by →; "Evaluate" without steps) · the model. */
export function experimentName(recipe: Recipe): string {
  const what = recipe.steps.length === 0 ? 'Evaluate' : recipe.steps.map(stepLabel).join(' → ');
  return `${what} · ${modelShortName(recipe.model.path)}`.slice(0, MAX_NAME);
}

/** `experimentName` of a recipe as written (a form, a file); null when it does not parse yet. */
export function experimentNameOf(input: RecipeInput | unknown): string | null {
  const parsed = Recipe.safeParse(input);
  return parsed.success ? experimentName(parsed.data) : null;
}
