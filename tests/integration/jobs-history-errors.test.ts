/**
 * A history locked by another connection when a job starts: the job fails with the typed IO error (what
 * to do, no stack), and its row does not stay 'queued' once the lock is gone.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openHistory } from '../../main/history/index.ts';
import { ChildProcessHost, JobService } from '../../main/jobs/index.ts';
import { STORIES, tempDir } from '../helpers/fixtures.ts';

const scratch = tempDir('whittle-jobs-db-');
afterAll(() => scratch.cleanup());

describe('a job when the history is locked', () => {
  it('fails with IO and its row is finished once the lock is released', { timeout: 20_000 }, async () => {
    const history = openHistory({ home: path.join(scratch.dir, 'home'), busyTimeoutMs: 200 });
    const other = new Database(history.path);
    const jobs = new JobService({
      history,
      host: new ChildProcessHost(path.join(scratch.dir, 'no-such-engine.cjs')),
      outputRoot: path.join(scratch.dir, 'outputs'),
      emit: () => {},
    });
    try {
      const { jobId, experimentId } = await jobs.start({ model: { path: STORIES.model }, evaluation: { footprint: true } });
      other.exec('BEGIN IMMEDIATE'); // before the job launches (it starts on the next turn)
      const f = await jobs.whenFinished(jobId);
      expect(f.status).toBe('failed');
      expect(f.error?.code).toBe('IO');
      expect(f.error?.message).toContain('stayed locked by another program');
      expect(f.error?.message).not.toMatch(/\n\s+at /);
      other.exec('ROLLBACK');
      await new Promise((r) => setTimeout(r, 2500));
      expect(history.get(experimentId).status).toBe('failed');
    } finally {
      other.close();
      await jobs.shutdown();
      history.close();
    }
  });
});
