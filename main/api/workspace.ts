/**
 * A workspace: the folders a caller may name in a call (serve mode's `--root`). A path is inside when
 * its real location — symlinks resolved, or for a path that does not exist yet the real location of its
 * deepest existing ancestor plus the rest — lies under the real location of a root. The desktop app and
 * the CLI have no workspace: their user picks files themselves. Every look at the disk is asynchronous:
 * the server's main process never blocks on it.
 */
import { lstat, readlink, realpath, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WhittleError } from '../engine/errors.ts';

export interface Workspace {
  /** The roots' real locations, in the order given. */
  readonly roots: readonly string[];
  /** Rejects with INVALID_INPUT naming the path and the roots when `input` lies outside every root. */
  check(input: string, field?: string): Promise<void>;
}

/** `~` and `~/…` as the user's home folder; otherwise the text unchanged. */
export function expandHome(input: string): string {
  const trimmed = input.trim();
  return trimmed === '~' || trimmed.startsWith('~/') ? path.join(os.homedir(), trimmed.slice(1)) : trimmed;
}

/** Symlinks followed in one path before it is refused as a loop. */
const MAX_LINKS = 40;

/**
 * Where `p` (absolute) really is: realpath when it exists; a dangling symlink is followed to its target;
 * a missing entry is its parent's real location joined with its name.
 */
async function realLocation(p: string, links = 0): Promise<string> {
  if (links > MAX_LINKS) throw new WhittleError('INVALID_INPUT', `${p} goes through too many symbolic links.`, { path: p });
  try {
    return await realpath(p);
  } catch {
    // Missing, a dangling link, or not reachable: work it out from its parent.
  }
  const parent = path.dirname(p);
  if (parent === p) return p;
  const isLink = await lstat(p).then((st) => st.isSymbolicLink(), () => false);
  if (isLink) {
    const target = path.resolve(await realLocation(parent, links), await readlink(p));
    return realLocation(target, links + 1);
  }
  return path.join(await realLocation(parent, links), path.basename(p));
}

/** Whether `child` is `root` or lies under it (both real, absolute). */
function isWithin(root: string, child: string): boolean {
  const fold = (s: string) => (process.platform === 'win32' || process.platform === 'darwin' ? s.toLowerCase() : s);
  const rel = path.relative(fold(root), fold(child));
  return rel === '' || (!path.isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${path.sep}`));
}

/**
 * The real locations a user path may be used as: with `~` expanded and trimmed (the services), and as
 * given, relative to the working folder (a recipe path taken verbatim). Both must be inside.
 */
export async function realLocations(input: string): Promise<string[]> {
  const readings = new Set([path.resolve(expandHome(input)), path.resolve(input)]);
  return Promise.all([...readings].map((p) => realLocation(p)));
}

/** Rejects with INVALID_INPUT when a root is not an existing folder. Duplicates are dropped. */
export async function createWorkspace(rootsGiven: readonly string[]): Promise<Workspace> {
  if (rootsGiven.length === 0) throw new WhittleError('INVALID_INPUT', 'A workspace needs at least one folder.');
  const roots: string[] = [];
  for (const given of rootsGiven) {
    const abs = path.resolve(expandHome(given));
    let real: string;
    try {
      real = await realpath(abs);
    } catch {
      throw new WhittleError('INVALID_INPUT', `The folder ${abs} (given with --root) does not exist.`, { path: abs });
    }
    if (!(await stat(real)).isDirectory()) throw new WhittleError('INVALID_INPUT', `${abs} (given with --root) is a file; give a folder.`, { path: abs });
    if (!roots.includes(real)) roots.push(real);
  }

  return {
    roots,
    async check(input, field) {
      const real = (await realLocations(input)).find((r) => !roots.some((root) => isWithin(root, r)));
      if (real === undefined) return;
      const where = real === path.resolve(expandHome(input)) ? '' : ` (it resolves to ${real})`;
      throw new WhittleError(
        'INVALID_INPUT',
        `${field ? `${field}: ` : ''}${input}${where} is outside the folders this server may use (${roots.join(', ')}). `
        + 'Move the file into one of them, or start `whittle serve` again with --root for its folder.',
        { path: input, resolved: real, roots: [...roots], ...(field ? { field } : {}) },
      );
    },
  };
}
