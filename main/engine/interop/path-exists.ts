import { stat } from 'node:fs/promises';

/** Whether a file or folder exists at `p` (false when it cannot be stat'ed). */
export async function pathExists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
