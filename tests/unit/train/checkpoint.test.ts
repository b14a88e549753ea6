/**
 * Training checkpoints on real files: the round trip of every field, keeping the newest two, replacing a
 * checkpoint of the same step, leftover temporaries and damaged folders passed over (and temporaries
 * removed), a process killed with SIGKILL while writing, another format version, and the refusal to
 * resume another model's checkpoint.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  assertResumable, checkpointFolderName, readLatestCheckpoint, writeCheckpoint, type CheckpointState,
} from '../../../main/engine/train/checkpoint.ts';
import { appRoot } from '../../../main/paths.ts';
import { rng } from '../native/simd-paths.ts';
import { tempDir } from '../../helpers/fixtures.ts';

const tmp = tempDir('whittle-checkpoint-');
afterAll(() => tmp.cleanup());

let dirs = 0;
const freshDir = (): string => path.join(tmp.dir, `run-${dirs++}`);

function randomArray(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * 4);
}

function state(step: number): CheckpointState {
  const shapes: [string, number[]][] = [['embed.weight', [37, 8]], ['layer.0.q.weight', [8, 8]], ['norm.weight', [8]]];
  return {
    modelFingerprint: 'sha256:model-a',
    configFingerprint: 'config-1',
    step,
    position: { seed: 7, epoch: 1, index: step % 5, sequences: 5 },
    rng: { dropout: [1, 2, 3] },
    curve: Array.from({ length: step }, (_, i) => ({ step: i + 1, totalSteps: 100, loss: 3 - i / 10, lr: 1e-3, gradNorm: 0.5, tokensPerSecond: 1000, etaSeconds: 10 })),
    parameters: shapes.map(([name, dims], k) => ({ name, dims, weights: randomArray(dims.reduce((a, d) => a * d, 1), step * 10 + k) })),
    optimizer: {
      step,
      moments: shapes.map(([name, dims], k) => {
        const n = dims.reduce((a, d) => a * d, 1);
        return { name, m: randomArray(n, step * 100 + k), v: randomArray(n, step * 1000 + k).map(Math.abs) };
      }),
    },
  };
}

describe('checkpoints', () => {
  it('read back exactly what was written', async () => {
    const dir = freshDir();
    const written = state(3);
    const folder = await writeCheckpoint(dir, written);
    expect(path.basename(folder)).toBe('step-000003');
    const read = await readLatestCheckpoint(dir);
    expect(read).not.toBeNull();
    const { version, folder: readFolder, ...rest } = read!;
    expect(version).toBe(1);
    expect(readFolder).toBe(folder);
    expect(rest).toEqual(written);
    expect(rest.parameters[0].weights).toBeInstanceOf(Float32Array);
  });

  it('keep the newest two, and a checkpoint written again for its step replaces the first', async () => {
    const dir = freshDir();
    for (const step of [1, 2, 3]) await writeCheckpoint(dir, state(step));
    expect((await readdir(dir)).sort()).toEqual(['step-000002', 'step-000003']);
    const again = { ...state(3), curve: [] };
    await writeCheckpoint(dir, again);
    expect((await readdir(dir)).sort()).toEqual(['step-000002', 'step-000003']);
    expect((await readLatestCheckpoint(dir))!.curve).toEqual([]);
  });

  it('pass over a leftover temporary and a damaged folder, and remove the temporary', async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, state(4));
    // What a write killed before its rename leaves: a temporary with a partial tensors.bin (and even a state.json).
    const leftover = path.join(dir, '.checkpoint-tmp-step-000009-1234-abcd');
    await mkdir(leftover);
    await writeFile(path.join(leftover, 'tensors.bin'), Buffer.alloc(100));
    await writeFile(path.join(leftover, 'state.json'), await readFile(path.join(dir, 'step-000004', 'state.json')));
    // A step folder whose tensors.bin lost its end (damage outside Whittle).
    await writeCheckpoint(dir, state(6));
    await truncate(path.join(dir, 'step-000006', 'tensors.bin'), 64);

    const read = await readLatestCheckpoint(dir);
    expect(read!.step).toBe(4);
    expect(read!.parameters).toEqual(state(4).parameters);
    expect(existsSync(leftover)).toBe(false);
  });

  it('survive a process killed while writing: the newest complete checkpoint is read', async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, state(2));
    const script = path.join(tmp.dir, 'write-big.ts');
    const module = path.join(appRoot(), 'main', 'engine', 'train', 'checkpoint.ts');
    await writeFile(script, `
      import { writeCheckpoint } from ${JSON.stringify(module)};
      const n = 24 * 1024 * 1024;
      const big = new Float32Array(n).fill(7);
      await writeCheckpoint(process.argv[2], {
        modelFingerprint: 'sha256:model-a', step: 7, position: { seed: 7, epoch: 0, index: 0, sequences: 5 }, curve: [],
        parameters: [{ name: 'big', dims: [n], weights: big }],
        optimizer: { step: 7, moments: [{ name: 'big', m: big, v: big }] },
      });
    `);
    const child = spawn(process.execPath, ['--experimental-strip-types', '--disable-warning=ExperimentalWarning', script, dir], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    // Kill it as soon as its temporary folder appears (mid-write, ~300 MB to go).
    const deadline = Date.now() + 20_000;
    let sawTemporary = false;
    while (Date.now() < deadline && child.exitCode === null) {
      if ((await readdir(dir)).some((n) => n.startsWith('.checkpoint-tmp-'))) {
        sawTemporary = true;
        child.kill('SIGKILL');
        break;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await exited;
    expect(sawTemporary).toBe(true);

    const read = await readLatestCheckpoint(dir);
    // Killed before its rename (the usual case): step 2. Had the write finished first: a complete step 7.
    if (read!.step === 2) expect(read!.parameters).toEqual(state(2).parameters);
    else expect(read!.parameters[0].weights.every((x) => x === 7)).toBe(true);
    expect((await readdir(dir)).some((n) => n.startsWith('.checkpoint-tmp-'))).toBe(false);
  }, 30_000);

  it('is null for a folder without checkpoints', async () => {
    expect(await readLatestCheckpoint(freshDir())).toBeNull();
  });

  it('refuse a checkpoint of another format version with a clear message', async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, state(5));
    const file = path.join(dir, checkpointFolderName(5), 'state.json');
    const json = JSON.parse(await readFile(file, 'utf8')) as { version: number };
    json.version = 99;
    await writeFile(file, JSON.stringify(json));
    await expect(readLatestCheckpoint(dir)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/format version 99; this version of Whittle reads version 1/) as unknown });
  });

  it('refuse to resume another model or other settings', async () => {
    const dir = freshDir();
    await writeCheckpoint(dir, state(8));
    const read = (await readLatestCheckpoint(dir))!;
    expect(() => assertResumable(read, 'sha256:model-a')).not.toThrow();
    expect(() => assertResumable(read, 'sha256:model-a', 'config-1')).not.toThrow();
    expect(() => assertResumable(read, 'sha256:model-b')).toThrow(expect.objectContaining({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/step 8 .*was written while training another model/) as unknown,
    }));
    expect(() => assertResumable(read, 'sha256:model-a', 'config-2')).toThrow(/other training settings/);
  });
});
