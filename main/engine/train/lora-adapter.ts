/** LoRA as a ViewAdapter of a training run: adapters added to the view, merged into the weights at write-back. */
import { WhittleError } from '../errors.ts';
import type { JobContext } from '../job-context.ts';
import type { OnnxModel } from '../onnx/proto-types.ts';
import type { OutputOptions, WrittenFolder } from '../rewrite/write-folder.ts';
import { applyLora, LORA_ROLES, writeLoraModel, type LoraOptions, type LoraRole, type LoraView } from './lora.ts';
import type { ViewAdapter } from './objective.ts';

export type { LoraRole } from './lora.ts';

export const isLoraRole = (r: string): r is LoraRole => (LORA_ROLES as readonly string[]).includes(r);

/** Writes a model with the trained adapters (`trained`, by name) merged into the weights they adapt. */
export type LoraWrite = (source: OnnxModel, lora: LoraView, trained: ReadonlyMap<string, Float32Array>, outDir: string, ctx: JobContext, step: unknown, options: OutputOptions) => Promise<WrittenFolder>;

/**
 * A ViewAdapter that adds LoRA adapters to the view (`check` may refuse them), feeds their dropout masks,
 * and at write-back hands the trained adapters to `write`.
 */
export function loraViewAdapter(options: LoraOptions, write: LoraWrite, check: (lora: LoraView) => void = () => {}): ViewAdapter {
  let lora: LoraView | null = null;
  return {
    async apply(view) {
      lora = await applyLora(view, options);
      check(lora);
      return lora.view;
    },
    feeds(draw) {
      return lora?.dropoutFeeds(draw) ?? {};
    },
    async write(source, view, weights, outDir, ctx, step, outputOptions) {
      if (!lora) throw new WhittleError('INTERNAL', 'The LoRA adapters were written before they were added.');
      const trained = new Map(view.trainable.map((p, i) => [p.name, weights[i]]));
      return write(source, lora, trained, outDir, ctx, step, outputOptions);
    },
  };
}

export function loraAdapter(options: LoraOptions): ViewAdapter {
  return loraViewAdapter(options, writeLoraModel);
}
