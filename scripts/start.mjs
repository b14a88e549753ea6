// `npm start`: the desktop app when an Electron runtime is available, otherwise serve mode.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from './node-runtime.mjs';

const passThrough = process.argv.slice(2);

function buildIfStale() {
  const r = spawnSync(process.execPath, [path.join(projectRoot, 'scripts', 'build.mjs'), '--if-stale'], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

/** The Electron executable, or the reason there is none. `require('electron')` fetches the runtime on
 *  first use when the network allows; here it runs in a child so its output stays out of the way. */
function findElectron() {
  if (process.env.WHITTLE_NO_ELECTRON) return { reason: 'WHITTLE_NO_ELECTRON is set' };
  const probe = spawnSync(process.execPath, ['-e', "process.stdout.write(require('electron'))"], {
    cwd: projectRoot, encoding: 'utf8', timeout: 300_000,
  });
  if (probe.status === 0 && probe.stdout) return { executable: probe.stdout.trim() };
  const output = `${probe.stderr ?? ''}${probe.stdout ?? ''}`;
  if (/fetch failed|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT/.test(output)) {
    return { reason: 'it is not installed and could not be downloaded' };
  }
  const why = output.split('\n').find((l) => /Error|failed/i.test(l));
  return { reason: why ? why.replace(/^.*?Error:\s*/, '').trim() : 'it is not installed' };
}

function run(cmd, args) {
  const child = spawn(cmd, args, { stdio: 'inherit', cwd: projectRoot });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
}

buildIfStale();
const wantsServe = passThrough.includes('--serve');
const electron = wantsServe ? { reason: '--serve was given' } : findElectron();
if (electron.executable) {
  run(electron.executable, [projectRoot, ...passThrough]);
} else {
  console.log(`whittle: no Electron runtime (${electron.reason}); starting serve mode instead.`);
  run(process.execPath, [path.join(projectRoot, 'out', 'cli.cjs'), 'serve', ...passThrough.filter((a) => a !== '--serve')]);
}
