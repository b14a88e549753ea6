/**
 * The job service of the training integration tests (train, distill, KD-QAT): a real engine process, a
 * real history in a scratch home, every event kept; and the sample's texts split as everywhere — the first
 * 400 TinyStories paragraphs held out, training on the rest.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { EventName, EventPayloads } from '../../preload/contract.ts';
import { splitDocuments } from '../../main/engine/data/text-file.ts';
import { openHistory, type History } from '../../main/history/index.ts';
import { ChildProcessHost, JobService } from '../../main/jobs/index.ts';
import { appRoot } from '../../main/paths.ts';
import { STORIES, tempDir } from './fixtures.ts';

const WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

export type JobEvent = { [E in EventName]: { channel: E; payload: EventPayloads[E] } }[EventName];

export interface TrainingJobs {
  scratch: ReturnType<typeof tempDir>;
  history: History;
  jobs: JobService;
  events: JobEvent[];
  trainText: string;
  heldOut: string;
}

export async function openTrainingJobs(prefix: string): Promise<TrainingJobs> {
  const scratch = tempDir(prefix);
  const docs = splitDocuments(await readFile(STORIES.text, 'utf8'));
  const trainText = path.join(scratch.dir, 'train.txt');
  const heldOut = path.join(scratch.dir, 'held-out.txt');
  writeFileSync(trainText, docs.slice(400).join('\n\n'));
  writeFileSync(heldOut, docs.slice(0, 400).join('\n\n'));
  const history = openHistory({ home: scratch.dir });
  const events: JobEvent[] = [];
  const jobs = new JobService({
    history, host: new ChildProcessHost(WORKER), outputRoot: path.join(scratch.dir, 'outputs'), cancelGraceMs: 20_000,
    emit: (channel, payload) => { events.push({ channel, payload } as JobEvent); },
  });
  return { scratch, history, jobs, events, trainText, heldOut };
}

export async function closeTrainingJobs(t: Pick<TrainingJobs, 'jobs' | 'history' | 'scratch'>): Promise<void> {
  await t.jobs.shutdown();
  t.history.close();
  t.scratch.cleanup();
}
