/**
 * The worker thread that inspects model files for the services (inspect-off-thread.ts): reading and
 * decoding a graph can take seconds on a large model, and the main process must keep answering calls
 * meanwhile. Receives `{ id, path }` (or `{ id, path, pruneStep }` for a prune plan, prune-plan.ts, or
 * `{ id, path, distill }` for a distillation plan, distill-plan.ts, or `{ id, path, gguf }` to export an
 * experiment's result as GGUF and evaluate it in llama.cpp, gguf-experiment.ts), answers
 * `{ id, ok: true, inspection }` or `{ id, ok: false, error }`.
 */
import { parentPort } from 'node:worker_threads';
import { toErrorShape } from '../engine/errors.ts';
import { exportAndEvaluateGguf, type GgufExperimentRequest } from '../engine/interop/gguf-experiment.ts';
import { importHuggingFace } from '../engine/interop/import-hf.ts';
import { inspectModel } from '../engine/model/inspect.ts';
import type { PruneStep } from '../../preload/recipe.ts';
import { planDistill, type DistillPlanParams } from './distill-plan.ts';
import { planPruneAt } from './prune-plan.ts';

const port = parentPort;
if (!port) throw new Error('inspect-worker.ts runs as a worker thread.');

/** A Hugging Face folder to import (models.importHf): conversion is CPU work the main process must not do. */
export interface ImportRequest { out: string; dtype: 'fp32' | 'fp16'; cache: boolean }

port.on('message', (message: { id: number; path: string; pruneStep?: PruneStep; distill?: DistillPlanParams; importHf?: ImportRequest; gguf?: GgufExperimentRequest }) => {
  const work: Promise<unknown> = message.gguf ? exportAndEvaluateGguf(message.gguf)
    : message.importHf ? importHuggingFace(message.path, message.importHf.out, { dtype: message.importHf.dtype, cache: message.importHf.cache })
    : message.distill ? planDistill(message.distill)
    : message.pruneStep ? planPruneAt(message.path, message.pruneStep) : inspectModel(message.path);
  work.then(
    (inspection) => port.postMessage({ id: message.id, ok: true, inspection }),
    (error: unknown) => port.postMessage({ id: message.id, ok: false, error: toErrorShape(error) }),
  );
});
