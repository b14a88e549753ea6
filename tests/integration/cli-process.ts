/**
 * Runs the real `whittle` CLI as a child process: the TypeScript entry under this Node (≥ 23.6 strips
 * the types), with jobs run by the engine worker from the sources.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { appRoot } from '../../main/paths.ts';

export const CLI_ENTRY = path.join(appRoot(), 'main', 'cli', 'index.ts');
export const ENGINE_WORKER = path.join(appRoot(), 'main', 'jobs', 'engine-worker.ts');

export interface CliResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, WHITTLE_ENGINE_WORKER: ENGINE_WORKER, NO_COLOR: '1' };
  // The test runner's own settings must not leak into the CLI, nor a developer's history folder.
  for (const key of Object.keys(env)) if (key.startsWith('VITEST') || key === 'NODE_OPTIONS') delete env[key];
  delete env.WHITTLE_HOME;
  return { ...env, ...extra };
}

export function startCli(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ChildProcess {
  return spawn(process.execPath, ['--no-warnings', CLI_ENTRY, ...args], {
    cwd: options.cwd ?? appRoot(),
    env: cliEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export function runCli(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const child = startCli(args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (t: string) => { stdout += t; });
  child.stderr!.setEncoding('utf8').on('data', (t: string) => { stderr += t; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`whittle ${args.join(' ')} did not finish in time.\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, options.timeoutMs ?? 90_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/** stdout must be exactly one JSON value (whitespace around it allowed); returns it. */
export function onlyJson(result: CliResult): unknown {
  const text = result.stdout.trim();
  if (!text) throw new Error(`no JSON on stdout; stderr:\n${result.stderr}`);
  return JSON.parse(text);
}
