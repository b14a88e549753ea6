/**
 * A real named pipe (mkfifo) for tests of paths that are not regular files. A reader that opened it
 * would block until a writer comes, so a child process opens it for writing after `unblockAfterMs` and
 * closes it again (up to six times): code that wrongly reads the pipe fails the test instead of hanging it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export interface Fifo { path: string; close(): void }

export function makeFifo(dir: string, name: string, unblockAfterMs = 4000): Fifo {
  const file = path.join(dir, name);
  execFileSync('mkfifo', [file]);
  const seconds = (unblockAfterMs / 1000).toFixed(1);
  // Each `: > pipe` waits for one reader and lets it through; a few readers may come.
  const writer: ChildProcess = spawn('sh', ['-c', `sleep ${seconds}; for i in 1 2 3 4 5 6; do : > "$1"; done`, 'sh', file], { stdio: 'ignore' });
  writer.unref();
  return { path: file, close: () => { if (writer.exitCode === null) writer.kill('SIGKILL'); } };
}
