/**
 * sweeps.* through the real router and services (memory transport, a temporary history, the real engine
 * worker), as a serve-mode caller with a workspace: every combination's paths must lie in it (a grid can
 * set a path), refused before any group or experiment is recorded.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorShape, ReplyMessage, SweepView } from '../../../preload/contract.ts';
import { createWhittleApp, type WhittleApp } from '../../../main/app.ts';
import { memoryLogger } from '../../../main/api/logger.ts';
import type { SenderInfo } from '../../../main/api/router.ts';
import { createWorkspace } from '../../../main/api/workspace.ts';
import { appRoot } from '../../../main/paths.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

let scratch: ReturnType<typeof tempDir>;
let app: WhittleApp;
let serve: SenderInfo;
let model: string;
let inside: string;
let id = 1;

const call = (method: string, params: unknown): Promise<ReplyMessage> => app.router.dispatch({ type: 'call', id: id++, method, params }, serve);
const errorOf = (r: ReplyMessage): ErrorShape => { if (r.ok) throw new Error('expected a failure'); return r.error; };
const groups = (): number => app.history.db.prepare<number>('SELECT COUNT(*) FROM experiment_groups').pluck().get() ?? 0;
const experiments = (): number => app.history.db.prepare<number>('SELECT COUNT(*) FROM experiments').pluck().get() ?? 0;

beforeAll(async () => {
  scratch = tempDir('whittle-sweeps-serve-');
  inside = path.join(scratch.dir, 'workspace');
  mkdirSync(inside);
  model = path.join(inside, 'model.onnx');
  copyFileSync(STORIES.model, model);
  app = createWhittleApp({ home: path.join(inside, 'home'), transport: 'memory', workerPath: WORKER, logger: memoryLogger() });
  serve = { transport: 'serve', authenticated: true, workspace: await createWorkspace([inside]) };
});

afterAll(async () => {
  await app?.close();
  scratch?.cleanup();
});

const base = () => ({ model: { path: model }, steps: [{ type: 'quantize', method: 'rtn', bits: 4 }], evaluation: { footprint: true } });

describe('sweeps in serve mode', () => {
  it('refuses a grid that writes outside the workspace, before anything is recorded', async () => {
    const outside = path.join(scratch.dir, 'elsewhere', 'out');
    const r = await call('sweeps.start', { recipe: base(), grid: { 'steps.0.bits': [4, 8], 'output.dir': [path.join(inside, 'a'), outside] } });
    const e = errorOf(r);
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain(outside);
    expect(groups()).toBe(0);
    expect(experiments()).toBe(0);
  });

  it('refuses an invalid combination with every one listed, and an unknown grid shape', async () => {
    const e = errorOf(await call('sweeps.start', { recipe: base(), grid: { 'steps.0.bits': [3, 4] } }));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain("1 of the sweep's 2 combinations is not a valid recipe");
    expect(errorOf(await call('sweeps.start', { recipe: base(), grid: {} })).message).toContain('at least one');
    expect(errorOf(await call('sweeps.get', { id: 99 })).code).toBe('NOT_FOUND');
    expect(groups()).toBe(0);
  });

  it('starts a sweep inside the workspace and answers its group', async () => {
    const r = await call('sweeps.start', { recipe: base(), grid: { 'steps.0.blockSize': [32, 64] }, name: 'block sizes' });
    if (!r.ok) throw new Error(r.error.message);
    const started = r.value as { groupId: number; jobs: { jobId: string; experimentId: number }[] };
    expect(started.jobs).toHaveLength(2);
    const view = (await call('sweeps.get', { id: started.groupId }) as Extract<ReplyMessage, { ok: true }>).value as SweepView;
    expect(view.name).toBe('block sizes');
    expect(view.members.map((m) => m.assignment)).toEqual([{ 'steps.0.blockSize': 32 }, { 'steps.0.blockSize': 64 }]);
    const list = (await call('sweeps.list', {}) as Extract<ReplyMessage, { ok: true }>).value as { id: number; members: number }[];
    expect(list).toEqual([expect.objectContaining({ id: started.groupId, members: 2 })]);
  });
});
