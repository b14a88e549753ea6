/** Quantization-aware training as a ViewAdapter of a training run: fake-quantized weights, exported as MatMulNBits. */
import { WhittleError } from '../errors.ts';
import type { ViewAdapter } from './objective.ts';
import { applyFakeQuant, exportQuantized, type FakeQuantOptions, type FakeQuantView } from './qat.ts';

export function qatAdapter(options: FakeQuantOptions): ViewAdapter {
  let qat: FakeQuantView | null = null;
  return {
    apply(view) {
      qat = applyFakeQuant(view, options);
      return Promise.resolve(qat.view);
    },
    async write(source, view, weights, outDir, ctx, step, outputOptions) {
      if (!qat) throw new WhittleError('INTERNAL', 'The fake-quantized weights were exported before they were set up.');
      const trained = new Map(view.trainable.map((p, i) => [p.name, weights[i]]));
      return exportQuantized(source, qat, trained, outDir, ctx, { ...outputOptions, step });
    },
  };
}
