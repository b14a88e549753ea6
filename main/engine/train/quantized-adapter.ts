/**
 * A MatMulNBits student trained as a ViewAdapter of a training run (trainModel on its dequantized model,
 * quantized-student.ts):
 *   gridAdapter   every weight trains through fake quantization on its own fixed grid, and the export
 *                 re-rounds the trained weights onto that grid (recovery of an RTN or GPTQ result);
 *   qloraAdapter  LoRA adapters over the frozen dequantized weights, merged and quantized again at export
 *                 (quantized-lora.ts).
 */
import { WhittleError } from '../errors.ts';
import type { LoraOptions } from './lora.ts';
import { loraViewAdapter } from './lora-adapter.ts';
import type { ViewAdapter } from './objective.ts';
import type { ParameterRole } from './parameters.ts';
import { applyFakeQuant } from './qat.ts';
import { writeRequantizedLora, type Requantize } from './quantized-lora.ts';
import { writeOnGrid, type WeightGrid } from './quantized-student.ts';

/** Trains the dequantized weights of `quantizedPath` on their fixed grids; writes `quantizedPath` with the new codes. */
export function gridAdapter(quantizedPath: string, grids: ReadonlyMap<string, WeightGrid>, freezeRoles: readonly ParameterRole[] = []): ViewAdapter {
  return {
    apply(view) {
      return Promise.resolve(applyFakeQuant(view, { grid: 'fixed', grids, freezeRoles }).view);
    },
    write(_source, view, weights, outDir, ctx, step, outputOptions) {
      return writeOnGrid(quantizedPath, grids, view.trainable, weights, outDir, ctx, step, outputOptions);
    },
  };
}

/** LoRA over the dequantized weights of `quantizedPath`; the merged weights quantized again with `requantize`. */
export function qloraAdapter(quantizedPath: string, grids: ReadonlyMap<string, WeightGrid>, options: LoraOptions, requantize: Requantize): ViewAdapter {
  return loraViewAdapter(
    options,
    (source, lora, trained, outDir, ctx, step, outputOptions) => writeRequantizedLora(quantizedPath, source, grids, lora, trained, requantize, outDir, ctx, step, outputOptions),
    (lora) => {
      const plain = lora.adapters.filter((a) => !grids.has(a.weight)).map((a) => a.weight);
      if (plain.length > 0) {
        throw new WhittleError('INVALID_INPUT', `LoRA on a quantized model adapts quantized weights only; ${plain.join(', ')} ${plain.length === 1 ? 'is' : 'are'} not quantized. Choose roles whose weights are MatMulNBits.`, { weights: plain });
      }
    },
  );
}
