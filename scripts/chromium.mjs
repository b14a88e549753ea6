// The Chromium the end-to-end tests drive. Looked up in this order:
//   1. WHITTLE_CHROMIUM               an executable named explicitly (an error when it does not exist);
//   2. a system Chromium or Chrome    /usr/bin/chromium, then chromium, chromium-browser, google-chrome,
//                                      google-chrome-stable on PATH (skipped when WHITTLE_NO_SYSTEM_CHROMIUM=1);
//   3. Playwright's own browser       what `npx playwright install chromium` downloaded (macOS, Windows);
//   4. the project's own copy         .tools/chromium/, extracted from the @sparticuz/chromium npm package
//                                      (a headless Chromium for Linux x64 shipped brotli-compressed inside
//                                      the package, with the NSS libraries it links against).
// `node scripts/chromium.mjs --provision` (run by `npm install`) extracts 4 when 1–3 find nothing;
// `node scripts/chromium.mjs` prints which browser would be used.
import { spawnSync } from 'node:child_process';
import { chmodSync, createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createBrotliDecompress } from 'node:zlib';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PROVISIONED_DIR = path.join(projectRoot, '.tools', 'chromium');
const PROVISIONED_EXE = path.join(PROVISIONED_DIR, 'chromium');
const SYSTEM_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

function isExecutableFile(file) {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name, env) {
  if (process.platform === 'win32') return null;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

/** Libraries shipped beside a provisioned browser (lib/libnss3.so …) go on its LD_LIBRARY_PATH. */
function launchEnv(executablePath, env) {
  const lib = path.join(path.dirname(executablePath), 'lib');
  if (process.platform !== 'linux' || !existsSync(path.join(lib, 'libnss3.so'))) return undefined;
  return { LD_LIBRARY_PATH: [lib, env.LD_LIBRARY_PATH].filter(Boolean).join(path.delimiter) };
}

function found(executablePath, source, env) {
  return { executablePath, source, env: launchEnv(executablePath, env) };
}

function playwrightBrowser() {
  try {
    const require = createRequire(path.join(projectRoot, 'package.json'));
    const exe = require('playwright-core').chromium.executablePath();
    return exe && isExecutableFile(exe) ? exe : null;
  } catch {
    return null;
  }
}

/**
 * The browser to use: { executablePath, source, env } (env: variables to add when launching it), or null
 * when there is none yet. Throws when WHITTLE_CHROMIUM names something that is not there.
 */
export function findChromium(env = process.env) {
  const explicit = env.WHITTLE_CHROMIUM?.trim();
  if (explicit) {
    const exe = path.resolve(explicit);
    if (!isExecutableFile(exe)) throw new Error(`WHITTLE_CHROMIUM is ${explicit}, but there is no browser executable there.`);
    return found(exe, 'WHITTLE_CHROMIUM', env);
  }
  if (env.WHITTLE_NO_SYSTEM_CHROMIUM !== '1') {
    if (isExecutableFile('/usr/bin/chromium')) return found('/usr/bin/chromium', 'system Chromium', env);
    for (const name of SYSTEM_NAMES) {
      const exe = onPath(name, env);
      if (exe) return found(exe, `system ${name.startsWith('google') ? 'Chrome' : 'Chromium'}`, env);
    }
  }
  const playwright = playwrightBrowser();
  if (playwright) return found(playwright, "Playwright's Chromium", env);
  if (isExecutableFile(PROVISIONED_EXE)) return found(PROVISIONED_EXE, 'headless Chromium from @sparticuz/chromium', env);
  return null;
}

/** The folder of the @sparticuz/chromium package's compressed files, or null where it is not installed. */
function sparticuzBin() {
  try {
    const require = createRequire(path.join(projectRoot, 'package.json'));
    // Its exports hide package.json; the entry is build/index.js, the compressed files are in bin/.
    const bin = path.join(path.dirname(require.resolve('@sparticuz/chromium')), '..', 'bin');
    return existsSync(path.join(bin, 'chromium.br')) ? bin : null;
  } catch {
    return null;
  }
}

async function unbrotli(from, to) {
  await pipeline(createReadStream(from), createBrotliDecompress(), createWriteStream(to));
}

/**
 * Extracts @sparticuz/chromium into .tools/chromium/ (Linux x64 only): the browser binary and the NSS
 * libraries it links against, so it starts on a machine that has no Chromium of its own. Returns the
 * browser, or null with the reason printed when it cannot be provisioned here.
 */
export async function provisionChromium(log = console.log) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    log(`whittle: no browser for the end-to-end tests; run \`npx playwright install chromium\` (${process.platform}-${process.arch}).`);
    return null;
  }
  const bin = sparticuzBin();
  if (!bin) {
    log('whittle: no browser for the end-to-end tests and @sparticuz/chromium is not installed; run `npm install`, or set WHITTLE_CHROMIUM.');
    return null;
  }
  const staging = `${PROVISIONED_DIR}.partial`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  await unbrotli(path.join(bin, 'chromium.br'), path.join(staging, 'chromium'));
  chmodSync(path.join(staging, 'chromium'), 0o755);
  const libs = path.join(bin, 'al2023.tar.br');
  if (existsSync(libs)) {
    // The archive holds lib/*.so (NSS, NSPR, expat).
    await unbrotli(libs, path.join(staging, 'al2023.tar'));
    const untar = spawnSync('tar', ['-xf', 'al2023.tar'], { cwd: staging, stdio: 'inherit' });
    rmSync(path.join(staging, 'al2023.tar'), { force: true });
    if (untar.status !== 0) throw new Error('could not unpack the libraries of @sparticuz/chromium (tar failed)');
  }
  rmSync(PROVISIONED_DIR, { recursive: true, force: true });
  renameSync(staging, PROVISIONED_DIR);
  log(`whittle: extracted a headless Chromium for the end-to-end tests into ${path.relative(projectRoot, PROVISIONED_DIR)}/`);
  return found(PROVISIONED_EXE, 'headless Chromium from @sparticuz/chromium', process.env);
}

/** The browser to use, extracting the project's own copy when nothing else is there. */
export async function ensureChromium(env = process.env, log = console.log) {
  return findChromium(env) ?? (await provisionChromium(log));
}

export function describeChromium(browser) {
  return `${browser.source}: ${browser.executablePath}`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const provision = process.argv.includes('--provision');
  try {
    const browser = provision ? await ensureChromium() : findChromium();
    if (browser) console.log(`whittle: end-to-end tests use ${describeChromium(browser)}`);
    else if (!provision) console.log('whittle: no browser for the end-to-end tests yet (`node scripts/chromium.mjs --provision` extracts one)');
  } catch (error) {
    // A missing test browser never fails `npm install`: the tests say so when they start.
    console.log(`whittle: ${error instanceof Error ? error.message : String(error)}`);
  }
}
