// `npm run bench [name-filter]`: runs every tests/bench/*.bench.ts in its own Node process (sources run
// directly under Node's type stripping) and collects what they print into bench-results/.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './node-runtime.mjs';

const filter = process.argv[2] ?? '';
const dir = path.join(projectRoot, 'tests', 'bench');
const results = path.join(projectRoot, 'bench-results');
mkdirSync(results, { recursive: true });

const benches = readdirSync(dir).filter((f) => f.endsWith('.bench.ts') && f.includes(filter)).sort();
let failed = 0;
for (const file of benches) {
  console.log(`\n── ${file} ──`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--disable-warning=ExperimentalWarning', path.join(dir, file)], {
    cwd: projectRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024,
  });
  process.stdout.write(r.stdout ?? '');
  writeFileSync(path.join(results, file.replace(/\.ts$/, '.txt')), r.stdout ?? '');
  if (r.status !== 0) { failed++; console.log(`${file} exited with ${r.status}`); }
}
console.log(`\n${benches.length - failed} benchmarks ran, ${failed} failed; outputs in bench-results/`);
process.exit(failed ? 1 : 0);
