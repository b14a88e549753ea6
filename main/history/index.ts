export { History, openHistory } from './history.ts';
export type { CachedEvaluation, ExperimentUpdate, FinalStatus, ListQuery, NewExperiment, NewLogLine } from './history.ts';
export { resolveHome, historyPath, HISTORY_FILE } from './home.ts';
export { SCHEMA_VERSION } from './migrations.ts';
export { pickHeadline, HEADLINE_NAMES } from './headline.ts';
