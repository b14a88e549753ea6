/**
 * models.inspect reads and decodes the model on a worker thread: while a large graph is inspected the
 * main process keeps answering (history.list replies before the inspection ends) and its event loop
 * never stalls for more than a small part of what the same inspection takes on the main thread.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWhittleApp, type WhittleApp } from '../../../main/app.ts';
import { createOffThreadInspector } from '../../../main/api/inspect-off-thread.ts';
import { memoryLogger } from '../../../main/api/logger.ts';
import { createMemoryClient, type MemoryClient } from '../../../main/api/memory-transport.ts';
import { inspectModel } from '../../../main/engine/model/inspect.ts';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { makeTensor } from '../../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../../main/engine/onnx/writer.ts';
import { appRoot } from '../../../main/paths.ts';
import { WhittleCallError } from '../../../preload/wire.ts';
import { STORIES, tempDir } from '../../helpers/fixtures.ts';
import { nodeOf, valueInfo } from '../onnx/helpers.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');
/** Extra nodes that make the sample's graph slow enough to read that a stall would show. */
const EXTRA_NODES = 40_000;

let scratch: ReturnType<typeof tempDir>;
let app: WhittleApp;
let client: MemoryClient;
let large: string;

/** The sample with a long chain of Add nodes (one small constant each) ending in an extra output. */
async function writeLargeModel(dir: string): Promise<string> {
  const model = await readModel(STORIES.model);
  const graph = model.proto.graph!;
  let last = 'chain_0';
  graph.initializer.push(makeTensor(last, DataType.float32, [1], Float32Array.of(0)));
  for (let i = 1; i <= EXTRA_NODES; i++) {
    const c = `c_${i}`;
    graph.initializer.push(makeTensor(c, DataType.float32, [1], Float32Array.of(i)));
    graph.node.push(nodeOf('Add', [last, c], [`chain_${i}`], `add_${i}`));
    last = `chain_${i}`;
  }
  graph.output.push(valueInfo(last, DataType.float32, [1]));
  const file = path.join(dir, 'large.onnx');
  await writeModel(model, file);
  return file;
}

beforeAll(async () => {
  scratch = tempDir('whittle-inspect-thread-');
  large = await writeLargeModel(scratch.dir);
  app = createWhittleApp({ home: path.join(scratch.dir, 'home'), transport: 'memory', workerPath: WORKER, logger: memoryLogger() });
  client = createMemoryClient(app.router, app.events, { logger: memoryLogger() });
}, 60_000);

afterAll(async () => {
  client?.close();
  await app?.close();
  scratch?.cleanup();
});

/** The longest gap between ticks of a 5 ms timer while `work` runs, and how long it took. */
async function lagDuring<T>(work: () => Promise<T>): Promise<{ value: T; maxLagMs: number; durationMs: number }> {
  let last = performance.now();
  let maxLagMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxLagMs = Math.max(maxLagMs, now - last);
    last = now;
  }, 5);
  const started = performance.now();
  try {
    const value = await work();
    return { value, maxLagMs, durationMs: performance.now() - started };
  } finally {
    clearInterval(timer);
  }
}

describe('models.inspect off the main thread', () => {
  it('gives the same inspection as reading the model here', async () => {
    const inspector = createOffThreadInspector();
    try {
      expect(await inspector.inspect(STORIES.model)).toEqual(await inspectModel(STORIES.model));
      const e = await inspector.inspect(path.join(scratch.dir, 'missing.onnx')).then(() => null, (x: unknown) => x);
      expect(e).toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      await inspector.close();
    }
  });

  it('keeps the event loop and other calls going while a large model is inspected', async () => {
    // On the main thread the same inspection holds the event loop for most of its duration.
    const here = await lagDuring(() => inspectModel(large));
    expect(here.value.opHistogram.Add).toBeGreaterThanOrEqual(EXTRA_NODES);
    expect(here.maxLagMs).toBeGreaterThan(here.durationMs / 4);

    let listedAt = 0;
    const there = await lagDuring(async () => {
      const inspection = client.call('models.inspect', { path: large });
      await client.call('history.list', {});
      listedAt = performance.now();
      return inspection;
    });
    const finishedAt = performance.now();
    expect(there.value.opHistogram.Add).toBe(here.value.opHistogram.Add);
    expect(listedAt).toBeLessThan(finishedAt - there.durationMs / 2);
    expect(there.maxLagMs).toBeLessThan(here.durationMs / 4);
  });

  it('a model that is not there is still a typed error through the call', async () => {
    const e = await client.call('models.inspect', { path: path.join(scratch.dir, 'nothing.onnx') }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(WhittleCallError);
    expect((e as WhittleCallError).code).toBe('NOT_FOUND');
  });
});
