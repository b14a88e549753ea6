/**
 * The hash router's routes: the page lives in `location.hash` so a reload keeps it, and the app works
 * from file:// (Electron) as well as http:// (serve mode).
 */
/** 'relevance': best search matches first (bm25); the page switches to it while a search is typed. */
export type HistorySort = 'relevance' | 'created' | 'name' | 'status' | 'kind';

export interface HistoryQuery {
  search: string;
  status: string;
  kind: string;
  /** Experiments carrying every one of these tags (`tag=` repeated in the URL). */
  tags: string[];
  starred: boolean;
  sort: HistorySort;
  order: 'asc' | 'desc';
  page: number;
}

export type Route =
  | { name: 'home' }
  | { name: 'model'; path: string }
  | { name: 'evaluate'; path: string; jobId: string | null; experimentId: number | null; from?: number | null }
  | { name: 'quantize'; path: string; jobId: string | null; experimentId: number | null; from?: number | null }
  | { name: 'prune'; path: string; jobId: string | null; experimentId: number | null; from?: number | null }
  | { name: 'train'; path: string; jobId: string | null; experimentId: number | null; from?: number | null }
  | { name: 'distill'; path: string; jobId: string | null; experimentId: number | null; from?: number | null }
  | { name: 'history'; query: HistoryQuery }
  | { name: 'historyDetail'; id: number }
  | { name: 'sweep'; id: number }
  | { name: 'compare'; ids: number[]; baseline: number | null }
  | { name: 'pareto'; sha256: string | null; path: string | null }
  | { name: 'notFound'; hash: string };

export const DEFAULT_HISTORY_QUERY: HistoryQuery = { search: '', status: '', kind: '', tags: [], starred: false, sort: 'created', order: 'desc', page: 1 };

const SORTS: readonly HistorySort[] = ['relevance', 'created', 'name', 'status', 'kind'];

function positiveInt(value: string | null): number | null {
  if (value === null || !/^\d+$/.test(value)) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/** `from=ID` of a wizard's address, only when present (routes without it stay as they were). */
function fromParam(params: URLSearchParams): { from?: number } {
  const from = positiveInt(params.get('from'));
  return from === null ? {} : { from };
}

export function parseHash(hash: string): Route {
  const raw = hash.startsWith('#') ? hash.slice(1) : hash;
  const q = raw.indexOf('?');
  const pathPart = (q >= 0 ? raw.slice(0, q) : raw) || '/';
  const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  const segments = pathPart.split('/').filter(Boolean);

  if (segments.length === 0) return { name: 'home' };
  if (segments.length === 1 && segments[0] === 'model') {
    const path = params.get('path');
    return path ? { name: 'model', path } : { name: 'home' };
  }
  if (segments.length === 1 && (segments[0] === 'evaluate' || segments[0] === 'quantize' || segments[0] === 'prune' || segments[0] === 'train' || segments[0] === 'distill')) {
    return {
      name: segments[0],
      path: params.get('path') ?? '',
      jobId: params.get('job') || null,
      experimentId: positiveInt(params.get('exp')),
      // Edit and re-run: the form starts from this experiment's recipe, attached to no job.
      ...fromParam(params),
    };
  }
  if (segments[0] === 'history') {
    if (segments.length === 1) {
      const sort = params.get('sort') as HistorySort | null;
      return {
        name: 'history',
        query: {
          search: params.get('q') ?? '',
          status: params.get('status') ?? '',
          kind: params.get('kind') ?? '',
          tags: [...new Set(params.getAll('tag').filter(Boolean))],
          starred: params.get('starred') === '1',
          sort: sort && SORTS.includes(sort) ? sort : 'created',
          order: params.get('order') === 'asc' ? 'asc' : 'desc',
          page: positiveInt(params.get('page')) ?? 1,
        },
      };
    }
    if (segments.length === 2) {
      const id = positiveInt(segments[1]);
      if (id !== null) return { name: 'historyDetail', id };
    }
  }
  if (segments.length === 1 && segments[0] === 'compare') {
    const ids = (params.get('ids') ?? '').split(',').map((s) => positiveInt(s.trim())).filter((id): id is number => id !== null);
    return { name: 'compare', ids: [...new Set(ids)], baseline: positiveInt(params.get('baseline')) };
  }
  if (segments.length === 1 && segments[0] === 'pareto') {
    const sha = params.get('model');
    return { name: 'pareto', sha256: sha && /^[0-9a-f]{64}$/.test(sha) ? sha : null, path: params.get('path') || null };
  }
  if (segments.length === 2 && segments[0] === 'sweeps') {
    const id = positiveInt(segments[1]);
    if (id !== null) return { name: 'sweep', id };
  }
  return { name: 'notFound', hash: raw };
}

function withQuery(path: string, entries: [string, string | number | null | undefined][]): string {
  const params = new URLSearchParams();
  for (const [k, v] of entries) if (v !== null && v !== undefined && v !== '') params.append(k, String(v));
  const s = params.toString();
  return s ? `#${path}?${s}` : `#${path}`;
}

export const href = {
  home: (): string => '#/',
  model: (path: string): string => withQuery('/model', [['path', path]]),
  evaluate: (path: string, job?: { jobId: string; experimentId: number }): string =>
    withQuery('/evaluate', [['path', path], ['job', job?.jobId], ['exp', job?.experimentId]]),
  quantize: (path: string, job?: { jobId?: string; experimentId: number }): string =>
    withQuery('/quantize', [['path', path], ['job', job?.jobId], ['exp', job?.experimentId]]),
  prune: (path: string, job?: { jobId?: string; experimentId: number }): string =>
    withQuery('/prune', [['path', path], ['job', job?.jobId], ['exp', job?.experimentId]]),
  train: (path: string, job?: { jobId?: string; experimentId: number }): string =>
    withQuery('/train', [['path', path], ['job', job?.jobId], ['exp', job?.experimentId]]),
  distill: (path: string, job?: { jobId?: string; experimentId: number }): string =>
    withQuery('/distill', [['path', path], ['job', job?.jobId], ['exp', job?.experimentId]]),
  history: (query: Partial<HistoryQuery> = {}): string => {
    const q = { ...DEFAULT_HISTORY_QUERY, ...query };
    return withQuery('/history', [
      ['q', q.search],
      ['status', q.status],
      ['kind', q.kind],
      ...q.tags.map((t): [string, string] => ['tag', t]),
      ['starred', q.starred ? 1 : null],
      ['sort', q.sort === 'created' ? null : q.sort],
      ['order', q.order === 'desc' ? null : q.order],
      ['page', q.page === 1 ? null : q.page],
    ]);
  },
  historyDetail: (id: number): string => `#/history/${id}`,
  sweep: (id: number): string => `#/sweeps/${id}`,
  compare: (ids: readonly number[], baseline?: number | null): string => withQuery('/compare', [['ids', ids.join(',')], ['baseline', baseline]]),
  /** The Pareto view of a model, by its sha256 (or its file's path). */
  pareto: (model: { sha256?: string | null; path?: string | null }): string => withQuery('/pareto', [['model', model.sha256], ['path', model.sha256 ? null : model.path]]),
};

/** The wizard that makes (and shows) a job of this kind, attached to it: quantize, prune, train and distill jobs have one; others open the evaluate page. */
export function wizardHref(kind: string, modelPath: string, job?: { jobId?: string; experimentId: number }): string | null {
  if (kind === 'quantize') return href.quantize(modelPath, job);
  if (kind === 'prune') return href.prune(modelPath, job);
  if (kind === 'train') return href.train(modelPath, job);
  if (kind === 'distill') return href.distill(modelPath, job);
  return null;
}

/** Edit and re-run: the wizard of this kind with every field set from experiment `from`'s recipe; null for kinds without a wizard. */
export function editHref(kind: string, modelPath: string, from: number): string | null {
  if (kind !== 'quantize' && kind !== 'prune' && kind !== 'train' && kind !== 'distill') return null;
  return withQuery(`/${kind}`, [['path', modelPath], ['from', from]]);
}
