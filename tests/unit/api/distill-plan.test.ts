/**
 * `distill.plan` on the stories260K sample, through the router and the inspection worker: a student of
 * blocks [0, 2, 4] with its parameters and bytes before running (describeStudent's), a brought student
 * checked against the teacher, the overlap of the evaluation text with the training text as a warning,
 * and bad input (a block the teacher lacks, no student, a relative path) refused.
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWhittleApp, type WhittleApp } from '../../../main/app.ts';
import { memoryLogger } from '../../../main/api/logger.ts';
import { createMemoryClient, type MemoryClient } from '../../../main/api/memory-transport.ts';
import { readTextFile, splitDocuments } from '../../../main/engine/data/text-file.ts';
import { describeStudent } from '../../../main/engine/distill/student.ts';
import { appRoot } from '../../../main/paths.ts';
import { fixture, STORIES, tempDir } from '../../helpers/fixtures.ts';

const GPT2 = fixture('onnx', 'ortgenai', 'tiny-random-gpt2-fp32', 'past.onnx');

let scratch: ReturnType<typeof tempDir>;
let app: WhittleApp;
let client: MemoryClient;
let train: string;
let held: string;

beforeAll(async () => {
  scratch = tempDir('whittle-distill-plan-');
  const logger = memoryLogger();
  app = createWhittleApp({ home: path.join(scratch.dir, 'home'), transport: 'memory', workerPath: path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts'), logger });
  client = createMemoryClient(app.router, app.events, { logger });
  const docs = splitDocuments(await readTextFile(STORIES.text));
  train = path.join(scratch.dir, 'train.txt');
  held = path.join(scratch.dir, 'held.txt');
  writeFileSync(train, docs.slice(100).join('\n\n'));
  writeFileSync(held, docs.slice(90, 110).join('\n\n'));
});
afterAll(async () => {
  client?.close();
  await app?.close();
  scratch?.cleanup();
});

describe('distill.plan', () => {
  it('a student of blocks 0, 2, 4: its size before running, as describeStudent gives it, and the held-out paragraphs the training text holds as a warning', async () => {
    const plan = await client.call('distill.plan', { teacher: STORIES.model, blocks: [0, 2, 4], text: train, evalText: held });
    const size = await describeStudent(STORIES.model, [0, 2, 4]);
    expect(plan.student).toEqual(size);
    expect(plan.student!.params).toBeLessThan(plan.student!.teacherParams);
    expect(plan.check).toBeNull();
    // held.txt: paragraphs 90–109, of which 100–109 are in the training text.
    expect(plan.overlap).toMatchObject({ shared: 10, sameFile: false });
    expect(plan.warnings).toHaveLength(1);
    expect(plan.warnings[0]).toMatch(/^10 of the 20 paragraphs/);
    const none = await client.call('distill.plan', { teacher: STORIES.model, blocks: [1] });
    expect(none.overlap).toBeNull();
    expect(none.warnings).toEqual([]);
  });

  it('a brought student is checked against the teacher', async () => {
    const plan = await client.call('distill.plan', { teacher: STORIES.model, student: STORIES.model, tokenizer: STORIES.tokenizer });
    expect(plan.check).toEqual({ vocab: 512, teacherBlocks: 5, studentBlocks: 5 });
    expect(plan.student).toBeNull();
    if (existsSync(GPT2)) {
      const e = await client.call('distill.plan', { teacher: STORIES.model, student: GPT2 }).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/vocabulary \(1000 logits\) differs from the teacher's \(512\)/) });
    }
  });

  it('bad input: a block the teacher lacks, no student, a relative path', async () => {
    const outside = await client.call('distill.plan', { teacher: STORIES.model, blocks: [0, 5] }).catch((x: unknown) => x);
    expect(outside).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/Block 5 is not one of the teacher's blocks/) });
    const neither = await client.call('distill.plan', { teacher: STORIES.model }).catch((x: unknown) => x);
    expect(neither).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/Say what the student is/) });
    const relative = await client.call('distill.plan', { teacher: 'model.onnx', blocks: [0] }).catch((x: unknown) => x);
    expect(relative).toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/not a full path/) });
  });
});
