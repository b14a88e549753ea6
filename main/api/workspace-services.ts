/**
 * The services of reports and bundles (`reports.export`, `history.export`, `history.import`), spread
 * into createServices' handlers. Paths are the user's: `~` expanded, absolute required; serve mode has
 * already confined them to the workspace (router.ts, call-paths.ts).
 */
import path from 'node:path';
import { WhittleError } from '../engine/errors.ts';
import { exportBundle, importBundle, type BundleHistory } from '../history/bundle/index.ts';
import type { History } from '../history/history.ts';
import { exportReport } from '../history/report/index.ts';
import { appVersion } from '../paths.ts';
import type { EventBus } from './events.ts';
import type { Handlers } from './router.ts';
import { expandHome } from './workspace.ts';

export interface WorkspaceServiceDeps {
  history: Pick<History, 'get' | 'lineage'> & BundleHistory;
  events: EventBus;
  /** Where imported output folders go. */
  outputRoot: string;
}

function userPath(input: string, what: string): string {
  const p = expandHome(input);
  if (!path.isAbsolute(p)) throw new WhittleError('INVALID_INPUT', `"${input}" is not a full path. Give the full path of the ${what}.`, { path: input });
  return path.normalize(p);
}

export function workspaceHandlers(deps: WorkspaceServiceDeps): Pick<Handlers, 'reports.export' | 'history.export' | 'history.import'> {
  const { history, events } = deps;
  return {
    async 'reports.export'({ ids, format, path: file, baseline }) {
      return await exportReport(history, ids, format, file === undefined ? null : userPath(file, 'report file'), {
        version: appVersion(), ...(baseline !== undefined ? { baseline } : {}),
      });
    },

    async 'history.export'({ ids, path: file, withOutputs }) {
      return await exportBundle(history, ids, userPath(file, 'bundle file'), { withOutputs, appVersion: appVersion() });
    },

    async 'history.import'({ path: file }) {
      const imported = await importBundle(history, userPath(file, 'bundle file'), { outputsRoot: deps.outputRoot });
      events.emit('history.changed', { experimentId: null });
      return imported;
    },
  };
}
