/**
 * Where Whittle keeps its history database and outputs: WHITTLE_HOME when set, else the platform's
 * per-user application-data folder. (The desktop app may pass Electron's app.getPath('userData')
 * instead, which is the same folder on every platform.)
 */
import os from 'node:os';
import path from 'node:path';

export function resolveHome(env: Record<string, string | undefined> = process.env, platform: NodeJS.Platform = process.platform, homedir: string = os.homedir()): string {
  const override = env.WHITTLE_HOME?.trim();
  if (override) return path.resolve(override);
  if (platform === 'win32') {
    const appData = env.APPDATA?.trim() || path.win32.join(homedir, 'AppData', 'Roaming');
    return path.win32.join(appData, 'Whittle');
  }
  if (platform === 'darwin') return path.posix.join(homedir, 'Library', 'Application Support', 'Whittle');
  const config = env.XDG_CONFIG_HOME?.trim() || path.posix.join(homedir, '.config');
  return path.posix.join(config, 'Whittle');
}

export const HISTORY_FILE = 'history.db';

export function historyPath(home: string): string {
  return path.join(home, HISTORY_FILE);
}
