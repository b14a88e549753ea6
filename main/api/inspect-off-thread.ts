/**
 * Model inspection for the services, on a worker thread (inspect-worker.ts) so that the main process
 * never reads or decodes a model itself: a large model inspected in serve mode or the desktop app does
 * not hold up other calls. One worker serves the calls in turn and stops when idle.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DistillPlan, ErrorShape, ModelInspection, PrunePlan } from '../../preload/contract.ts';
import type { DistillPlanParams } from './distill-plan.ts';
import type { PruneStep } from '../../preload/recipe.ts';
import { fromErrorShape, WhittleError } from '../engine/errors.ts';
import type { GgufExperimentRequest, GgufExperimentResult } from '../engine/interop/gguf-experiment.ts';
import type { ImportResult } from '../engine/interop/import-hf.ts';
import type { ImportRequest } from './inspect-worker.ts';

type Reply = { id: number; ok: true; inspection: unknown } | { id: number; ok: false; error: ErrorShape };

/**
 * The worker's entry: the TypeScript source beside this module when it runs from the sources (Node and
 * vitest strip the types), else the bundle esbuild writes beside the app's other bundles in out/.
 */
export function inspectWorkerPath(): string {
  // CommonJS bundles have __filename; ES modules (sources run by Node) have import.meta.url; vitest has both.
  const here = typeof __filename === 'string' ? __filename : fileURLToPath(import.meta.url);
  return path.join(path.dirname(here), here.endsWith('.ts') ? 'inspect-worker.ts' : 'inspect-worker.cjs');
}

export interface OffThreadInspector {
  inspect(path: string): Promise<ModelInspection>;
  /** `prune.plan` on the same worker (the model is read there too). */
  prunePlan(path: string, step: PruneStep): Promise<PrunePlan>;
  /** `distill.plan` on the same worker (models and texts are read there). */
  distillPlan(params: DistillPlanParams): Promise<DistillPlan>;
  /** `models.importHf` on the same worker: the folder converted there (returns the importer's result). */
  importHf(folder: string, request: ImportRequest): Promise<ImportResult>;
  /** `history.evaluateGguf`: the result exported as GGUF and run in llama.cpp on this worker. */
  evaluateGguf(request: GgufExperimentRequest): Promise<GgufExperimentResult>;
  /** Stops the worker (pending calls fail). */
  close(): Promise<void>;
}

export function createOffThreadInspector(workerPath = inspectWorkerPath()): OffThreadInspector {
  let worker: Worker | null = null;
  let nextId = 1;
  const pending = new Map<number, { resolve: (m: unknown) => void; reject: (e: unknown) => void }>();

  const failAll = (error: unknown): void => {
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };

  function start(): Worker {
    const w = new Worker(workerPath);
    w.on('message', (reply: Reply) => {
      const p = pending.get(reply.id);
      if (!p) return;
      pending.delete(reply.id);
      if (reply.ok) p.resolve(reply.inspection);
      else p.reject(fromErrorShape(reply.error));
      if (pending.size === 0) w.unref();
    });
    w.on('error', (error) => {
      worker = null;
      failAll(new WhittleError('INTERNAL', `Model inspection failed: ${error.message}`, undefined, { cause: error }));
    });
    w.on('exit', (code) => {
      if (worker === w) worker = null;
      if (pending.size > 0) failAll(new WhittleError('INTERNAL', `The model inspection worker stopped (exit code ${code}).`));
    });
    return w;
  }

  function ask<T>(message: { path: string; pruneStep?: PruneStep; distill?: DistillPlanParams; importHf?: ImportRequest; gguf?: GgufExperimentRequest }): Promise<T> {
    worker ??= start();
    worker.ref();
    const id = nextId++;
    const w = worker;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (m: unknown) => void, reject });
      w.postMessage({ id, ...message });
    });
  }

  return {
    inspect: (file) => ask<ModelInspection>({ path: file }),
    prunePlan: (file, step) => ask<PrunePlan>({ path: file, pruneStep: step }),
    distillPlan: (params) => ask<DistillPlan>({ path: params.teacher, distill: params }),
    importHf: (folder, request) => ask<ImportResult>({ path: folder, importHf: request }),
    evaluateGguf: (request) => ask<GgufExperimentResult>({ path: request.modelPath, gguf: request }),
    async close() {
      const w = worker;
      worker = null;
      if (w) await w.terminate();
    },
  };
}
