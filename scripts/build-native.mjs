// Builds Whittle's native kernels (native-kernels/ → native-kernels/build/Release/whittle_kernels.node)
// with cmake-js, offline, against Node-API headers only (node-api-headers + node-addon-api), so the
// result loads in any Node ≥ 18 and in Electron without a rebuild.
// Usage: node scripts/with-node.mjs scripts/build-native.mjs [--force] [--verbose]
// Rebuilds only when a source under native-kernels/ is newer than the .node file (or with --force).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const project = path.join(root, 'native-kernels');
const output = path.join(project, 'build', 'Release', 'whittle_kernels.node');
const args = new Set(process.argv.slice(2));
const force = args.has('--force');
const verbose = args.has('--verbose');

function fail(message) {
  console.error(`native: ${message}`);
  process.exit(1);
}

function newestTime(file) {
  if (!statSync(file).isDirectory()) return statSync(file).mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(file)) newest = Math.max(newest, newestTime(path.join(file, entry)));
  return newest;
}

/** Newest modification time of what the build reads: src/, CMakeLists.txt, package.json. */
function newestSourceTime() {
  return Math.max(...['src', 'CMakeLists.txt', 'package.json'].map((p) => newestTime(path.join(project, p))));
}

function works(command, commandArgs = ['--version']) {
  const r = spawnSync(command, commandArgs, { stdio: 'ignore', shell: process.platform === 'win32' });
  return r.status === 0;
}

if (!existsSync(path.join(project, 'CMakeLists.txt'))) fail(`no CMakeLists.txt in ${project}.`);

if (!force && existsSync(output) && statSync(output).mtimeMs >= newestSourceTime()) {
  console.log(`native: up to date (${path.relative(root, output)})`);
  process.exit(0);
}

if (!works('cmake')) {
  fail('CMake was not found. Install CMake ≥ 3.15 (Debian/Ubuntu: `apt-get install cmake`, macOS: `brew install cmake`, ' +
    'Windows: Visual Studio\'s "C++ CMake tools") and run `npm run build:native`.');
}
if (process.platform !== 'win32') {
  const compilers = [process.env.CXX, 'c++', 'g++', 'clang++'].filter(Boolean);
  if (!compilers.some((c) => works(c))) {
    fail('No C++17 compiler was found (tried ' + compilers.join(', ') + '). Install one (Debian/Ubuntu: ' +
      '`apt-get install g++`, macOS: `xcode-select --install`) and run `npm run build:native`.');
  }
}
for (const pkg of ['cmake-js', 'node-addon-api', 'node-api-headers']) {
  if (!existsSync(path.join(root, 'node_modules', pkg, 'package.json'))) {
    fail(`the npm package ${pkg} is missing; run \`npm install\` first.`);
  }
}

// cmake-js would otherwise pick up the machine's npm "nodedir"; with "binary.napi_versions" in
// native-kernels/package.json it uses node-api-headers, and dropping the variable keeps it that way.
const env = { ...process.env };
for (const key of Object.keys(env)) if (/^npm_config_nodedir$/i.test(key)) delete env[key];

const started = Date.now();
const cmakeJs = path.join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'compile', '--directory', project, '--config', 'Release',
  '--parallel', String(Math.max(1, os.availableParallelism?.() ?? os.cpus().length)), '--log-level', verbose ? 'info' : 'warn'],
{ cwd: root, env, encoding: 'utf8', stdio: verbose ? 'inherit' : 'pipe', maxBuffer: 64 * 1024 * 1024 });

if (result.status !== 0 || !existsSync(output)) {
  if (!verbose) process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}`.split('\n').slice(-60).join('\n') + '\n');
  fail(`the build failed${result.error ? ` (${result.error.message})` : ''}. Fix the error above, or run ` +
    '`npm run build:native -- --force --verbose` for the full log.');
}

const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`native: built ${path.relative(root, output)} (Release, Node-API 8) in ${seconds} s`);
