import type { ExperimentDetail, Sample, WhittleApi } from '../../preload/contract.ts';

/**
 * What a job form starts from: the bundled samples, and the experiment it is attached to (re-run, reload
 * mid-job) when there is one. Either may be missing: forms fall back to the sample defaults.
 */
export async function fetchPrefill(api: WhittleApi, experimentId: number | null): Promise<{ samples: Sample[]; stored: ExperimentDetail | null }> {
  const samples = await api.call('samples.list', {}).catch(() => [] as Sample[]);
  const stored = experimentId === null ? null : await api.call('history.get', { id: experimentId }).catch(() => null);
  return { samples, stored };
}
