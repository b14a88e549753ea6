/**
 * Structured pruning end to end: checks (before any work) → importance → plan → graph surgery → the
 * output folder (rewrite/write-folder.ts) with genai_config.json / config.json updated to the new
 * head counts, MLP width and block count. The recipe step `{ type: 'prune', method: 'structured' }`
 * delivers the folder under its partial name for the runner to commit.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PRUNE_STRUCTURED } from '../../../preload/methods.ts';
import { importanceNeedsCalibration, PruneStructuredStep } from '../../../preload/recipe.ts';
import { throwIfAborted, WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import { countParameters } from '../model/parameters.ts';
import { toNumber } from '../onnx/graph.ts';
import { readModel } from '../onnx/reader.ts';
import type { StepInput, StepOutput, StepRunner } from '../pipeline/step.ts';
import { folderStepOutput, stepOutputDir } from '../quantize/step.ts';
import { mapArchitecture, type ArchitectureMap } from '../rewrite/architecture.ts';
import { writeOutputFolder, type OutputOptions, type WrittenFolder } from '../rewrite/write-folder.ts';
import { applyStructured, type StructuredApplyResult } from './structured-apply.ts';
import { activationScores, blockInfluenceScores, magnitudeScores } from './structured-importance.ts';
import { checkStructured, planStructured, type StructuredPlan } from './structured-plan.ts';
import { taylorScores } from './taylor-importance.ts';

export interface StructuredOptions extends OutputOptions {
  /** The tokenizer for calibration (else the recipe's). */
  tokenizerPath?: string;
}

export interface StructuredResult extends WrittenFolder {
  plan: StructuredPlan;
  applied: StructuredApplyResult;
  paramsBefore: number;
  paramsAfter: number;
  /** Config files beside the model that were updated. */
  configs: string[];
  warnings: string[];
}

/** The step, checked: a schema failure is INVALID_INPUT naming the fields. */
export function parseStructuredStep(step: unknown): PruneStructuredStep {
  const parsed = PruneStructuredStep.safeParse(step);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'step'}: ${i.message}`);
  throw new WhittleError('INVALID_INPUT', `The structured pruning step is not valid: ${issues.join('; ')}.`, { issues });
}

/** Sizes after the surgery, as config files spell them (null where blocks differ or nothing changed). */
function newSizes(map: ArchitectureMap, plan: StructuredPlan, applied: StructuredApplyResult): { heads?: number; kvHeads?: number; intermediate?: number; layers?: number } {
  const out: { heads?: number; kvHeads?: number; intermediate?: number; layers?: number } = {};
  const uniform = applied.blocks.length === map.blocks.length;
  if (plan.target === 'heads' && uniform) { out.heads = applied.blocks[0].heads!; out.kvHeads = applied.blocks[0].kvHeads!; }
  if (plan.target === 'neurons' && uniform) out.intermediate = applied.blocks[0].intermediate!;
  if (plan.target === 'layers') out.layers = map.blocks.length - plan.layers.length;
  return out;
}

/** Rewrites genai_config.json (model.decoder.*) and config.json in `dir` to the new sizes; returns those changed. */
export async function updateConfigs(dir: string, sizes: ReturnType<typeof newSizes>): Promise<string[]> {
  const changed: string[] = [];
  const edit = async (file: string, apply: (json: Record<string, unknown>) => void): Promise<void> => {
    let text: string;
    try { text = await readFile(path.join(dir, file), 'utf8'); } catch { return; }
    let json: Record<string, unknown>;
    try { json = JSON.parse(text) as Record<string, unknown>; } catch { return; }
    apply(json);
    await writeFile(path.join(dir, file), `${JSON.stringify(json, null, 4)}\n`);
    changed.push(file);
  };
  const set = (o: Record<string, unknown> | undefined, key: string, v: number | undefined): void => { if (o && v !== undefined && key in o) o[key] = v; };
  await edit('genai_config.json', (j) => {
    const decoder = (j.model as Record<string, unknown> | undefined)?.decoder as Record<string, unknown> | undefined;
    set(decoder, 'num_attention_heads', sizes.heads);
    set(decoder, 'num_key_value_heads', sizes.kvHeads);
    set(decoder, 'num_hidden_layers', sizes.layers);
  });
  await edit('config.json', (j) => {
    set(j, 'num_attention_heads', sizes.heads);
    set(j, 'num_key_value_heads', sizes.kvHeads);
    set(j, 'intermediate_size', sizes.intermediate);
    set(j, 'num_hidden_layers', sizes.layers);
    set(j, 'n_layer', sizes.layers);
    set(j, 'n_head', sizes.heads);
  });
  return changed;
}

/**
 * Prunes `modelPath` structurally and writes the output folder `outDir`. Every check on the step and the
 * model runs before any weight is read; nothing is left at `outDir` unless the whole job succeeds.
 */
export async function pruneStructured(modelPath: string, stepInput: unknown, outDir: string, ctx: JobContext, options: StructuredOptions = {}): Promise<StructuredResult> {
  const step = parseStructuredStep(stepInput);
  const source = path.resolve(modelPath);
  const model = await readModel(source);
  if (!model.proto.graph) throw new WhittleError('MODEL_PARSE', `${source} has no graph.`);
  const map = mapArchitecture(model);
  const req = { target: step.target, ratio: step.ratio, count: step.count, keep: step.keep };
  checkStructured(map, req);
  const tokenizerPath = options.tokenizerPath ?? options.recipe?.tokenizer?.path;
  if (importanceNeedsCalibration(step.importance) && !tokenizerPath) {
    throw new WhittleError('INVALID_INPUT', `The ${step.importance} importance is measured on calibration text, which needs a tokenizer. Add the model's tokenizer.json to the recipe.`);
  }
  const calibration = step.calibration;
  const shapeOf = (name: string): number[] | null => {
    const t = model.proto.graph!.initializer.find((x) => x.name === name);
    return t ? t.dims.map((d) => toNumber(d)) : null;
  };
  const paramsBefore = countParameters(model.proto).parameters;
  const written = await writeOutputFolder(model, outDir, ctx, {
    step,
    options,
    rewrite: async (m, scope) => {
      const graph = m.proto.graph!;
      const src = { modelPath: source, calibration: calibration!, tokenizerPath: tokenizerPath! };
      const scores = step.importance === 'magnitude' ? await magnitudeScores(graph, map, step.target, scope.reader)
        : step.importance === 'activation' ? await activationScores(m, map, step.target, scope.reader, src, ctx)
          : step.importance === 'taylor' ? await taylorScores(map, step.target, src, ctx, { aggregate: step.taylorAggregate })
            : await blockInfluenceScores(map, src, ctx);
      throwIfAborted(ctx.signal);
      const plan = planStructured(map, req, scores, shapeOf);
      for (const line of plan.lines) ctx.log('info', `prune: ${line}`);
      const applied = await applyStructured(m.proto, map, plan, scope);
      return { plan, applied, paramsAfter: countParameters(m.proto).parameters };
    },
    manifest: (r) => ({ weights: [], extra: { structured: { target: step.target, lines: r.plan.lines, resized: r.applied.resized, removedBlocks: r.applied.removedBlocks } } }),
  });
  const { plan, applied, paramsAfter } = written.result;
  const warnings: string[] = [];
  if (paramsBefore - paramsAfter !== plan.removedParameters) {
    warnings.push(`${paramsBefore - paramsAfter} parameters were removed where the plan expected ${plan.removedParameters}.`);
  }
  const sizes = newSizes(map, plan, applied);
  const configs = await updateConfigs(written.outDir, sizes);
  if (plan.target !== 'layers' && applied.blocks.length !== map.blocks.length) warnings.push('Some blocks were kept whole (keep patterns), so the config files cannot give one size for every block; they were left as they were.');
  return { ...written, plan, applied, paramsBefore, paramsAfter, configs, warnings };
}

export const pruneStructuredStep: StepRunner<PruneStructuredStep> = {
  description: PRUNE_STRUCTURED,
  async run(input: StepInput<PruneStructuredStep>, ctx: JobContext): Promise<StepOutput> {
    const { recipe, step } = input;
    const outDir = stepOutputDir(input, ctx);
    const r = await pruneStructured(input.modelPath, step, outDir, ctx, { recipe, deliver: 'partial' });
    const removals = r.plan.target === 'layers'
      ? r.plan.layers.map((b, i) => ({ block: b, removed: [b], kept: 0, params: r.plan.layerParams[i] }))
      : r.plan.cuts.map((c) => ({ block: c.block, removed: c.remove, kept: c.of - c.remove.length, params: c.params }));
    return folderStepOutput(r, {
      method: 'structured',
      target: step.target,
      ratio: step.ratio ?? null,
      count: step.count ?? null,
      importance: step.importance,
      ...(step.importance === 'taylor' ? { taylorAggregate: step.taylorAggregate ?? 'group' } : {}),
      paramsBefore: r.paramsBefore,
      paramsAfter: r.paramsAfter,
      removals,
      ...(step.calibration ? { calibration: step.calibration } : {}),
      warnings: r.warnings,
    });
  },
};
