/**
 * The one lifecycle of an output folder, shared by every step that writes a model:
 *
 *   partial folder (temporary name) → the step rewrites the model in memory (new tensors spooled) →
 *   model.onnx (+ model.onnx.data) written → companions copied → the layout's files (interop/layouts.ts)
 *   → whittle.json → delivered
 *
 * Delivered means renamed to its final name (`deliver: 'final'`, for direct callers), or handed back
 * still under its temporary name (`deliver: 'partial'`, for recipe steps): the runner then evaluates the
 * model there, writes the metrics into its whittle.json and commits it as the last act of a successful
 * job (pipeline/runner.ts). On any failure or cancel the partial folder is removed.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { OutputLayout, Recipe } from '../../../preload/recipe.ts';
import { throwIfAborted } from '../errors.ts';
import { applyLayout } from '../interop/layouts.ts';
import type { JobContext } from '../job-context.ts';
import type { OnnxModel } from '../onnx/proto-types.ts';
import { writeModel } from '../onnx/writer.ts';
import { sha256File, whittleVersion, writeManifest, type Manifest, type ManifestWeight } from './manifest.ts';
import { copyCompanions, createPartialFolder, DATA_FILE, listFiles, MODEL_FILE, type PartialFolder } from './output-folder.ts';
import { TensorSpool } from './spool.ts';
import { WeightReader } from './weight-reader.ts';

export interface OutputOptions {
  /** The whole recipe, recorded in whittle.json. */
  recipe?: Recipe;
  /** A tokenizer.json to ship with the output (its folder's tokenizer files come along). */
  tokenizerPath?: string;
  /** New tensor bytes kept in memory before spilling to a scratch file (default 128 MiB). */
  spoolMemory?: number;
  /**
   * 'final' (default): the folder is renamed to its final name before returning. 'partial': it is
   * returned under its temporary name with `pending` to commit or discard it.
   */
  deliver?: 'final' | 'partial';
  /** The folder's layout (interop/layouts.ts); default: the recipe's `output.layout`, else 'plain'. */
  layout?: OutputLayout;
}

/** What every model-writing step reports about the folder it wrote. */
export interface WrittenFolder {
  /** Where the folder is now: its final name, or its temporary name while `pending`. */
  outDir: string;
  modelPath: string;
  bytes: number;
  files: { name: string; bytes: number }[];
  /** With `deliver: 'partial'`: the folder still to be committed (or discarded). */
  pending?: PartialFolder;
}

/** What a rewrite gets to work with while the folder is being made. */
export interface RewriteScope {
  /** The partial folder (scratch files may go here; they are removed with it). */
  dir: string;
  /** Where new tensors' bytes go; removed once the model is written. */
  spool: TensorSpool;
  /** Reads the source's tensors one at a time; closed by the lifecycle if the rewrite does not. */
  reader: WeightReader;
}

export interface FolderWrite<T> {
  /** The step recorded in whittle.json. */
  step: unknown;
  options: OutputOptions;
  /** Changes `model` in memory (new tensors through `scope.spool`); its result feeds `manifest`. */
  rewrite(model: OnnxModel, scope: RewriteScope): Promise<T>;
  /** whittle.json's per-weight record and extra top-level entries (e.g. the method's settings). */
  manifest(result: T): { weights: ManifestWeight[]; extra?: Record<string, unknown> };
}

/** whittle.json's record of the model a folder was made from: its path, the sha256 of its .onnx file, its bytes with external data. */
export async function sourceRecord(model: OnnxModel): Promise<Manifest['source']> {
  const source = path.resolve(model.path);
  return {
    path: source,
    sha256: await sha256File(source),
    bytes: model.fileBytes + (await Promise.all(model.externalDataFiles.map(async (f) => (await stat(f)).size))).reduce((a, b) => a + b, 0),
    externalData: model.externalDataFiles.map((f) => path.basename(f)),
  };
}

/**
 * The layout of the folder at `outDir`: the options' own, else the recipe's `output.layout` except for the
 * intermediate models of a recipe's earlier steps (`<workDir>/step-<n>`, quantize/step.ts), else plain.
 */
function layoutOf(options: OutputOptions, outDir: string, ctx: JobContext): OutputLayout {
  if (options.layout) return options.layout;
  const asked = options.recipe?.output?.layout ?? 'plain';
  if (asked === 'plain' || !ctx.workDir) return asked;
  const intermediate = path.dirname(path.resolve(outDir)) === path.resolve(ctx.workDir) && /^step-\d+$/.test(path.basename(outDir));
  return intermediate ? 'plain' : asked;
}

/**
 * Writes the output folder of `model` (read from its source file) rewritten by `spec.rewrite`; see the
 * file header. Nothing is left at `outDir` or beside it when this throws.
 */
export async function writeOutputFolder<T>(model: OnnxModel, outDir: string, ctx: JobContext, spec: FolderWrite<T>): Promise<WrittenFolder & { result: T }> {
  const source = path.resolve(model.path);
  const partial = await createPartialFolder(outDir);
  const spool = new TensorSpool(path.join(partial.dir, '.tensors.tmp'), spec.options.spoolMemory);
  const reader = new WeightReader();
  try {
    const result = await spec.rewrite(model, { dir: partial.dir, spool, reader });
    await reader.close();
    throwIfAborted(ctx.signal);

    const outModel = path.join(partial.dir, MODEL_FILE);
    let reported = -Infinity;
    const onProgress = (done: number, totalBytes: number): void => {
      if (done - reported < 64 * 2 ** 20 && done < totalBytes) return; // at most one event per 64 MiB
      reported = done;
      ctx.progress({ phase: 'write', done, total: totalBytes, message: MODEL_FILE });
    };
    await writeModel(model, outModel, { externalData: 'auto', threshold: 1024, dataFileName: DATA_FILE, signal: ctx.signal, onProgress });
    await spool.remove();
    throwIfAborted(ctx.signal);

    await copyCompanions(source, spec.options.tokenizerPath ?? spec.options.recipe?.tokenizer?.path, partial.dir, ctx.log);
    const layout = await applyLayout(layoutOf(spec.options, partial.finalDir, ctx), partial.dir, ctx.log, source);
    throwIfAborted(ctx.signal);
    const nested = await Promise.all(layout.written.filter((n) => n.includes('/')).map(async (name) => ({ name, bytes: (await stat(path.join(partial.dir, name))).size })));
    const files = [...(await listFiles(partial.dir)), ...nested];
    const bytes = files.reduce((a, f) => a + f.bytes, 0);
    const { weights, extra } = spec.manifest(result);
    const manifest: Manifest = {
      whittle: whittleVersion(),
      created: new Date().toISOString(),
      recipe: spec.options.recipe ?? null,
      step: spec.step,
      source: await sourceRecord(model),
      output: { bytes, files },
      weights,
      ...(layout.layout !== 'plain' ? { layout: { name: layout.layout, written: layout.written, ...(layout.model ? { model: layout.model, dtype: layout.dtype } : {}) } } : {}),
      ...extra,
    };
    await writeManifest(partial.dir, manifest);
    throwIfAborted(ctx.signal);
    if (spec.options.deliver === 'partial') {
      return { outDir: partial.dir, modelPath: outModel, files, bytes, pending: partial, result };
    }
    const finalDir = await partial.commit();
    return { outDir: finalDir, modelPath: path.join(finalDir, MODEL_FILE), files, bytes, result };
  } catch (e) {
    await reader.close();
    await spool.close().catch(() => {});
    await partial.discard();
    throw e;
  }
}
