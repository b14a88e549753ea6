/**
 * The services: one handler per contract call. Parameters arrive already validated by the router; the
 * handlers check what a schema cannot (files exist, recipes are complete) and delegate to the history, the
 * job service, model inspection and the platform's dialogs.
 */
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  Recipe,
  type AppInfo, type CallParams, type CallResults, type DistillPlan, type ImportedModel, type JobInfo, type ModelInspection, type ParsedParams, type PrunePlan, type Sample,
} from '../../preload/contract.ts';
import type { PruneStep } from '../../preload/recipe.ts';
import { WhittleError } from '../engine/errors.ts';
import { notAFileMessage, specialFileKind } from '../engine/onnx/sniff.ts';
import { nativeAvailable } from '../engine/native/index.ts';
import type { History } from '../history/history.ts';
import { appPaths, appRoot, appVersion } from '../paths.ts';
import type { EventBus } from './events.ts';
import { readableIssues } from './issues.ts';
import { planQuantize } from './quantize-plan.ts';
import { checkSweep, resumeSweep, startSweep, sweepView } from '../jobs/sweep.ts';
import { callPaths } from './call-paths.ts';
import { checkCompareIds, compareExperiments } from '../history/compare.ts';
import { paretoSet } from '../history/pareto.ts';
import { sha256File } from '../jobs/model-file.ts';
import { expandHome } from './workspace.ts';
import type { Handlers, TransportKind } from './router.ts';
import { workspaceHandlers } from './workspace-services.ts';
import { evaluateExperimentGguf, type RunGguf } from './gguf-evaluate.ts';
import { withGgufComparison } from '../../preload/gguf.ts';

/** What the services need from the job service (main/jobs). */
export interface JobsPort {
  start(recipe: unknown, name?: string, options?: { groupId?: number }): Promise<{ jobId: string; experimentId: number }> | { jobId: string; experimentId: number };
  cancel(jobId: string): Promise<boolean> | boolean;
  list(): JobInfo[];
}

/** What the services need from the history repository (main/history). */
export type HistoryPort = Pick<History, 'list' | 'get' | 'delete' | 'update' | 'recentModels' | 'touchRecentModel' | 'kinds' | 'tags' | 'lineage' | 'db' | 'transaction' | 'setDetails'>;

/** What the sweep calls need from the history: its groups (main/history/groups.ts). */
export type SweepHistoryPort = Pick<History, 'createGroup' | 'group' | 'groups'>;

/** What the comparison and the Pareto view read from the history (main/history/compare.ts, pareto.ts). */
export type CompareHistoryPort = Pick<History, 'get' | 'db' | 'path'>;

export type PickPurpose = ParsedParams<'models.pickFile'>['purpose'];

/** Native file dialogs (desktop only). */
export interface Dialogs {
  pickFile(purpose: PickPurpose): Promise<string | null>;
  /** Shows an existing file or folder in the OS file manager; resolves false (with why) when it could not. */
  reveal?(path: string): Promise<{ opened: boolean; reason?: string }>;
}

export interface ServiceDeps {
  transport: TransportKind;
  home: string;
  history: HistoryPort & SweepHistoryPort & CompareHistoryPort;
  jobs: JobsPort;
  events: EventBus;
  inspectModel: (path: string) => Promise<ModelInspection>;
  /** `prune.plan`, off the main thread (the inspection worker): planning loads engine code the main process must not. */
  prunePlan: (path: string, step: PruneStep) => Promise<PrunePlan>;
  /** `distill.plan`, off the main thread (the inspection worker), with the paths already resolved. */
  distillPlan: (params: CallParams<'distill.plan'>) => Promise<DistillPlan>;
  /** `models.importHf`, off the main thread (the inspection worker); absent where importing is not offered. */
  importHf?: (folder: string, request: { out: string; dtype: 'fp32' | 'fp16'; cache: boolean }) => Promise<Omit<ImportedModel, 'seconds'>>;
  /** `history.evaluateGguf`'s export and llama.cpp run, off the main thread; absent where it is not offered. */
  evaluateGguf?: RunGguf;
  dialogs?: Dialogs;
  /** The bundled resources folder (holds sample/); defaults to appPaths.resources(). */
  resourcesDir?: string;
  /** Where job outputs go (imported bundles unpack theirs here); defaults to <home>/experiments. */
  outputRoot?: string;
  /** Whether the native kernels load here; defaults to loading the built addon (once). */
  nativeKernels?: () => boolean;
}

const requireFromApp = () => createRequire(path.join(appRoot(), 'package.json'));

export function onnxruntimeVersion(): string {
  try {
    return String((requireFromApp()('onnxruntime-node/package.json') as { version: string }).version);
  } catch {
    return 'unavailable';
  }
}

const SAMPLE_FILES = ['stories260K-kv.onnx', 'tokenizer.json', 'tokenizer_config.json', 'tinystories-eval.txt', 'tinystories-calibration.txt', 'LICENSE', 'README.md'];

/** Whether something is at `p` (asynchronously: the main process never blocks on the disk). */
async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/** The bundled sample, when all its files are present (a partial copy is not offered). */
export async function listSamples(resourcesDir: string): Promise<Sample[]> {
  const dir = path.join(resourcesDir, 'sample');
  if (!(await Promise.all(SAMPLE_FILES.map((f) => exists(path.join(dir, f))))).every(Boolean)) return [];
  return [{
    id: 'stories260K',
    name: 'stories260K (TinyStories)',
    description: 'A tiny real Llama-architecture language model (260 K parameters, 5 layers, KV cache) trained on '
      + 'children\'s stories, with its tokenizer and 400 evaluation stories. Perplexity ≈ 4.23 on the full text. MIT / CDLA-Sharing-1.0.',
    modelPath: path.join(dir, 'stories260K-kv.onnx'),
    tokenizerPath: path.join(dir, 'tokenizer.json'),
    textPath: path.join(dir, 'tinystories-eval.txt'),
    calibrationTextPath: path.join(dir, 'tinystories-calibration.txt'),
  }];
}

/** A user-typed model path as an absolute path, or a clear error. `~/` is the user's home folder. */
export async function resolveModelPath(input: string): Promise<string> {
  let p = expandHome(input);
  if (!path.isAbsolute(p)) {
    throw new WhittleError('INVALID_INPUT', `"${input}" is not a full path. Give the full path of the .onnx file (for example /home/me/models/model.onnx).`, { path: input });
  }
  p = path.normalize(p);
  let st;
  try {
    st = await stat(p);
  } catch {
    throw new WhittleError('NOT_FOUND', `There is no file at ${p}. Check the path, or pick the file again.`, { path: p });
  }
  if (st.isDirectory()) {
    throw new WhittleError('INVALID_INPUT', `${p} is a folder. Choose the .onnx file inside it.`, { path: p });
  }
  // A named pipe or a device would block the read that follows: refused before anything opens it.
  const special = specialFileKind(st);
  if (special) throw new WhittleError('INVALID_INPUT', notAFileMessage(p, special), { path: p, kind: special });
  return p;
}

/** An existing file or folder the user named, as an absolute path (files.reveal). */
export async function resolveExistingPath(input: string): Promise<string> {
  const p = path.normalize(expandHome(input));
  if (!path.isAbsolute(p)) {
    throw new WhittleError('INVALID_INPUT', `"${input}" is not a full path.`, { path: input });
  }
  if (!(await exists(p))) throw new WhittleError('NOT_FOUND', `There is nothing at ${p} any more: it was moved or deleted.`, { path: p });
  return p;
}

const NO_DIALOGS_REASON = 'There is no file dialog in the browser: type or paste the full path of the file instead.';

export function createServices(deps: ServiceDeps): Handlers {
  const { history, jobs, events } = deps;
  const resourcesDir = deps.resourcesDir ?? appPaths.resources();
  const nativeKernels = deps.nativeKernels ?? nativeAvailable;

  const handlers = {
    async 'app.info'(): Promise<AppInfo> {
      return {
        version: appVersion(),
        transport: deps.transport,
        platform: process.platform,
        home: deps.home,
        node: process.versions.node,
        onnxruntime: onnxruntimeVersion(),
        nativeKernels: nativeKernels(),
      };
    },

    async 'models.inspect'({ path: input }) {
      const file = await resolveModelPath(input);
      const inspection = await deps.inspectModel(file);
      history.touchRecentModel(file);
      return inspection;
    },

    async 'models.importHf'(p) {
      if (!deps.importHf) throw new WhittleError('INTERNAL', 'Importing Hugging Face folders is not available here.');
      const folder = path.normalize(expandHome(p.folder));
      if (!path.isAbsolute(folder)) throw new WhittleError('INVALID_INPUT', `"${p.folder}" is not a full path. Give the full path of the Hugging Face model folder (the one with config.json).`, { path: p.folder });
      const outputRoot = deps.outputRoot ?? path.join(deps.home, 'experiments');
      const out = p.out === undefined ? path.join(outputRoot, 'imported', path.basename(folder)) : path.normalize(expandHome(p.out));
      if (!path.isAbsolute(out)) throw new WhittleError('INVALID_INPUT', `"${p.out}" is not a full path. Give the full path of the output folder.`, { path: p.out });
      const started = Date.now();
      const r = await deps.importHf(folder, { out, dtype: p.dtype, cache: p.cache });
      history.touchRecentModel(r.modelPath);
      return {
        outDir: r.outDir, modelPath: r.modelPath, modelType: r.modelType, parameters: r.parameters, dtype: r.dtype, cache: r.cache,
        tiedEmbeddings: r.tiedEmbeddings, bytes: r.bytes, seconds: (Date.now() - started) / 1000,
      };
    },

    async 'models.recent'() {
      return await history.recentModels();
    },

    async 'models.pickFile'({ purpose }) {
      if (!deps.dialogs) return { path: null, reason: NO_DIALOGS_REASON };
      return { path: await deps.dialogs.pickFile(purpose) };
    },

    async 'samples.list'() {
      return await listSamples(resourcesDir);
    },

    async 'jobs.start'({ recipe, name }) {
      // The job service validates the recipe (INVALID_INPUT listing every issue) and keeps it verbatim.
      return await jobs.start(recipe, name);
    },

    async 'jobs.cancel'({ jobId }) {
      return { cancelled: await jobs.cancel(jobId) };
    },

    async 'jobs.list'() {
      return jobs.list();
    },

    async 'history.list'(query) {
      return history.list(query);
    },

    async 'history.kinds'() {
      return history.kinds();
    },

    async 'history.tags'({ limit }) {
      return history.tags(limit);
    },

    async 'history.get'({ id }) {
      return history.get(id);
    },

    async 'history.evaluateGguf'({ id, type }) {
      if (!deps.evaluateGguf) throw new WhittleError('INTERNAL', 'Evaluating GGUF files in llama.cpp is not available here.');
      const comparison = await evaluateExperimentGguf(history.get(id), type, deps.evaluateGguf);
      // Recorded in the experiment's details (the latest of each type), so its page shows it again later.
      history.setDetails(id, withGgufComparison(history.get(id).details, comparison));
      events.emit('history.changed', { experimentId: id });
      return comparison;
    },

    async 'history.lineage'({ id }) {
      return history.lineage(id);
    },

    async 'history.compare'({ ids, baseline }) {
      checkCompareIds(ids, baseline);
      return compareExperiments(ids.map((id) => history.get(id)), baseline);
    },

    async 'history.pareto'({ sha256, path: file }) {
      const sha = sha256 ?? await sha256File(await resolveModelPath(file!));
      return paretoSet(history, sha);
    },

    async 'history.delete'({ id }) {
      try {
        history.delete(id);
      } catch (error) {
        if (error instanceof WhittleError && error.code === 'NOT_FOUND') return { deleted: false };
        throw error;
      }
      events.emit('history.changed', { experimentId: id });
      return { deleted: true };
    },

    async 'history.update'({ id, ...change }) {
      const detail = history.update(id, change);
      events.emit('history.changed', { experimentId: id });
      return detail;
    },

    async 'recipes.validate'({ recipe }): Promise<CallResults['recipes.validate']> {
      const parsed = Recipe.safeParse(recipe);
      if (parsed.success) return { ok: true, recipe: parsed.data };
      return { ok: false, issues: readableIssues(parsed.error) };
    },

    async 'quantize.plan'({ path: input, step }) {
      const file = await resolveModelPath(input);
      return planQuantize(await deps.inspectModel(file), step);
    },

    async 'prune.plan'({ path: input, step }) {
      const file = await resolveModelPath(input);
      return await deps.prunePlan(file, step);
    },

    async 'distill.plan'(p) {
      const teacher = await resolveModelPath(p.teacher);
      const file = async (v: string | undefined): Promise<string | undefined> => (v === undefined ? undefined : await resolveModelPath(v));
      const [student, tokenizer, text, evalText] = await Promise.all([file(p.student), file(p.tokenizer), file(p.text), file(p.evalText)]);
      return await deps.distillPlan({
        teacher, ...(p.blocks ? { blocks: p.blocks } : {}), ...(student ? { student } : {}), ...(tokenizer ? { tokenizer } : {}),
        ...(text ? { text } : {}), ...(evalText ? { evalText } : {}),
      });
    },

    async 'sweeps.start'({ recipe, grid, name }, ctx) {
      // Serve mode: the paths of every combination (a grid can set a path) must lie in the caller's workspace.
      const workspace = ctx.sender.workspace;
      const check = workspace
        ? async (r: unknown) => { for (const { field, value } of callPaths('jobs.start', { recipe: r })) await workspace.check(value, field); }
        : null;
      const sweeps = { history, jobs: { start: async (r: unknown, n?: string, o?: { groupId?: number }) => { await check?.(r); return await jobs.start(r, n, o); } } };
      if (check) for (const m of checkSweep(recipe, grid).members) await check(m.recipe);
      const started = await startSweep(sweeps, { recipe, grid, ...(name ? { name } : {}) });
      events.emit('history.changed', { experimentId: null });
      return started;
    },

    async 'sweeps.get'({ id }) {
      return sweepView(history, id);
    },

    async 'sweeps.resume'({ id }) {
      const started = await resumeSweep({ history, jobs }, id);
      events.emit('history.changed', { experimentId: null });
      return started;
    },

    async 'sweeps.list'({ limit }) {
      return history.groups(limit);
    },

    ...workspaceHandlers({ history, events, outputRoot: deps.outputRoot ?? path.join(deps.home, 'experiments') }),

    async 'files.reveal'({ path: input }) {
      const target = await resolveExistingPath(input);
      if (!deps.dialogs?.reveal) return { opened: false, reason: `The output is at ${target} on the machine running Whittle.` };
      return await deps.dialogs.reveal(target);
    },
  } satisfies Handlers;

  return handlers;
}
