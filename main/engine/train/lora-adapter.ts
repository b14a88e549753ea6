/** LoRA as a ViewAdapter of a training run: adapters added to the view, merged into the weights at write-back. */
import { WhittleError } from '../errors.ts';
import { applyLora, LORA_ROLES, writeLoraModel, type LoraOptions, type LoraRole, type LoraView } from './lora.ts';
import type { ViewAdapter } from './objective.ts';

export type { LoraRole } from './lora.ts';

export const isLoraRole = (r: string): r is LoraRole => (LORA_ROLES as readonly string[]).includes(r);

export function loraAdapter(options: LoraOptions): ViewAdapter {
  let lora: LoraView | null = null;
  return {
    async apply(view) {
      lora = await applyLora(view, options);
      return lora.view;
    },
    feeds(draw) {
      return lora?.dropoutFeeds(draw) ?? {};
    },
    async write(source, view, weights, outDir, ctx, step, outputOptions) {
      if (!lora) throw new WhittleError('INTERNAL', 'The LoRA adapters were written before they were added.');
      const trained = new Map(view.trainable.map((p, i) => [p.name, weights[i]]));
      return writeLoraModel(source, lora, trained, outDir, ctx, step, outputOptions);
    },
  };
}
