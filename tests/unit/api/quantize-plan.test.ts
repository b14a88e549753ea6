/**
 * `quantize.plan` and `files.reveal` through the router (schema checks included) on a real Whittle app
 * over the in-memory transport, with the real stories260K inspection.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QuantizePlan } from '../../../preload/contract.ts';
import type { QuantizeRtnStep } from '../../../preload/recipe.ts';
import { createWhittleApp, type WhittleApp } from '../../../main/app.ts';
import { memoryLogger } from '../../../main/api/logger.ts';
import { createMemoryClient, type MemoryClient } from '../../../main/api/memory-transport.ts';
import { inspectModel } from '../../../main/engine/model/inspect.ts';
import { appRoot } from '../../../main/paths.ts';
import { WhittleCallError } from '../../../preload/wire.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

let scratch: ReturnType<typeof tempDir>;
let app: WhittleApp;
let client: MemoryClient;
let revealed: string[];
let desktop: WhittleApp;
let desktopClient: MemoryClient;

const step = (over: Partial<QuantizeRtnStep> = {}) => ({ type: 'quantize' as const, method: 'rtn' as const, bits: 4 as const, blockSize: 32, ...over });

async function failure(promise: Promise<unknown>): Promise<WhittleCallError> {
  const e = await promise.then(() => { throw new Error('expected the call to fail'); }, (error: unknown) => error);
  expect(e).toBeInstanceOf(WhittleCallError);
  return e as WhittleCallError;
}

beforeAll(() => {
  scratch = tempDir('whittle-plan-');
  const logger = memoryLogger();
  app = createWhittleApp({ home: path.join(scratch.dir, 'home'), transport: 'memory', workerPath: WORKER, logger });
  client = createMemoryClient(app.router, app.events, { logger });
  revealed = [];
  // The desktop's platform part, recording what it was asked to show instead of opening a file manager.
  desktop = createWhittleApp({
    home: path.join(scratch.dir, 'home-desktop'), transport: 'memory', workerPath: WORKER, logger,
    dialogs: { pickFile: async () => null, reveal: async (p) => { revealed.push(p); return { opened: true }; } },
  });
  desktopClient = createMemoryClient(desktop.router, desktop.events, { logger });
});

afterAll(async () => {
  client?.close();
  desktopClient?.close();
  await app?.close();
  await desktop?.close();
  scratch?.cleanup();
});

describe('quantize.plan', () => {
  let plan4: QuantizePlan;
  beforeAll(async () => { plan4 = await client.call('quantize.plan', { path: STORIES.model, step: step() }); });

  it('lists every weight the inspection found, with an action and the model size before and after', async () => {
    const inspection = await inspectModel(STORIES.model);
    expect(plan4.weights.map((w) => `${w.name}/${w.node}`)).toEqual(inspection.quantizable.map((w) => `${w.name}/${w.node}`));
    expect(plan4.modelBytes).toBe(inspection.bytesOnDisk);
    expect(plan4.bytesBefore).toBe(inspection.bytesOnDisk);
    // 5 layers × 7 projections are quantized; the rotary tables and the tied embedding (both uses) are not.
    expect(plan4.counts).toEqual({ quantize: 35, keep: 0, skip: 4 });
    const q = plan4.weights.find((w) => w.name === 'model.layers.0.self_attn.q_proj.weight_t')!;
    expect(q).toMatchObject({ op: 'MatMul', shape: [64, 64], dtype: 'float32', action: 'quantize', bytesBefore: 64 * 64 * 4 });
    expect(q.bytesAfter).toBeLessThan(q.bytesBefore);
    for (const w of plan4.weights.filter((x) => x.action === 'skip')) {
      expect(w.reason, w.name).toBeTruthy();
      expect(w.bytesAfter).toBe(w.bytesBefore);
    }
    expect(plan4.weights.find((w) => w.name === 'rope_cos')!.reason).toMatch(/rotary|positions/);
  });

  it('estimates a 4-bit model well below the original, and the saving is the sum of the weights\u2019 savings', () => {
    expect(plan4.bytesAfter).toBeLessThan(plan4.bytesBefore * 0.6);
    const saved = plan4.weights.filter((w) => w.action === 'quantize').reduce((a, w) => a + w.bytesBefore - w.bytesAfter, 0);
    expect(plan4.bytesBefore - plan4.bytesAfter).toBe(saved);
  });

  it('estimates 8 bits larger than 4 bits, and asymmetric larger than symmetric', async () => {
    const plan8 = await client.call('quantize.plan', { path: STORIES.model, step: step({ bits: 8 }) });
    expect(plan8.bytesAfter).toBeGreaterThan(plan4.bytesAfter);
    expect(plan8.bytesAfter).toBeLessThan(plan8.bytesBefore);
    const sym = await client.call('quantize.plan', { path: STORIES.model, step: step({ symmetric: true, blockSize: 16 }) });
    const asym = await client.call('quantize.plan', { path: STORIES.model, step: step({ symmetric: false, blockSize: 16 }) });
    expect(sym.bytesAfter).toBeLessThanOrEqual(asym.bytesAfter);
    expect(sym.weights.filter((w) => w.action === 'quantize').reduce((a, w) => a + w.bytesAfter, 0))
      .toBeLessThan(asym.weights.filter((w) => w.action === 'quantize').reduce((a, w) => a + w.bytesAfter, 0));
  });

  it('marks weights matching a keep pattern as kept, and keeping costs size', async () => {
    const plan = await client.call('quantize.plan', {
      path: STORIES.model,
      step: step({ keep: ['^model\\.layers\\.0\\.self_attn\\.q_proj\\.weight_t$', 'down_proj'] }),
    });
    const kept = plan.weights.filter((w) => w.action === 'keep').map((w) => w.name);
    expect([...kept].sort()).toEqual(['model.layers.0.self_attn.q_proj.weight_t', ...[0, 1, 2, 3, 4].map((i) => `model.layers.${i}.mlp.down_proj.weight_t`)].sort());
    expect(plan.counts).toEqual({ quantize: 29, keep: 6, skip: 4 });
    const q0 = plan.weights.find((w) => w.name === 'model.layers.0.self_attn.q_proj.weight_t')!;
    expect(q0.reason).toMatch(/keep pattern/);
    expect(q0.bytesAfter).toBe(q0.bytesBefore);
    expect(plan.weights.find((w) => w.name === 'model.layers.1.self_attn.q_proj.weight_t')!.action).toBe('quantize');
    expect(plan.bytesAfter).toBeGreaterThan(plan4.bytesAfter);
  });

  it('an invalid keep pattern is INVALID_INPUT naming the pattern', async () => {
    const e = await failure(client.call('quantize.plan', { path: STORIES.model, step: step({ keep: ['lm_head', 'q_proj('] }) }));
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('"q_proj("');
    expect(e.message).toMatch(/pattern 2/);
  });

  it('checks the step against the recipe schema and the path like models.inspect', async () => {
    const bits = await failure(client.call('quantize.plan', { path: STORIES.model, step: { ...step(), bits: 3 as 4 } }));
    expect(bits.code).toBe('INVALID_INPUT');
    const block = await failure(client.call('quantize.plan', { path: STORIES.model, step: step({ blockSize: 48 }) }));
    expect(block.code).toBe('INVALID_INPUT');
    expect(block.message).toMatch(/power of two/);
    const extra = await failure(client.call('quantize.plan', { path: STORIES.model, step: { ...step(), groups: 2 } as ReturnType<typeof step> }));
    expect(extra.code).toBe('INVALID_INPUT');
    const missing = await failure(client.call('quantize.plan', { path: path.join(scratch.dir, 'nope.onnx'), step: step() }));
    expect(missing.code).toBe('NOT_FOUND');
    const relative = await failure(client.call('quantize.plan', { path: 'model.onnx', step: step() }));
    expect(relative.code).toBe('INVALID_INPUT');
  });
});

describe('files.reveal', () => {
  it('without a file manager (serve mode) says where the output is', async () => {
    const dir = path.join(scratch.dir, 'out-folder');
    mkdirSync(dir);
    expect(await client.call('files.reveal', { path: dir })).toEqual({ opened: false, reason: `The output is at ${dir} on the machine running Whittle.` });
  });

  it('on the desktop hands the existing path to the platform', async () => {
    const file = path.join(scratch.dir, 'model.onnx');
    writeFileSync(file, 'x');
    expect(await desktopClient.call('files.reveal', { path: file })).toEqual({ opened: true });
    expect(revealed).toEqual([file]);
  });

  it('a path that does not exist is NOT_FOUND, a relative one INVALID_INPUT, and nothing is revealed', async () => {
    const missing = await failure(desktopClient.call('files.reveal', { path: path.join(scratch.dir, 'gone') }));
    expect(missing.code).toBe('NOT_FOUND');
    const relative = await failure(desktopClient.call('files.reveal', { path: 'out' }));
    expect(relative.code).toBe('INVALID_INPUT');
    const empty = await failure(desktopClient.call('files.reveal', { path: '' }));
    expect(empty.code).toBe('INVALID_INPUT');
    expect(revealed).toHaveLength(1);
  });
});
