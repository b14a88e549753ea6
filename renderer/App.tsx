import { AppShell, Container } from '@mantine/core';
import { useEffect, useMemo, type ReactNode } from 'react';
import type { WhittleApi } from '../preload/contract.ts';
import { AppHeader } from './components/AppHeader.tsx';
import { ConnectionBanner } from './components/ConnectionBanner.tsx';
import { ToastProvider } from './components/ToastProvider.tsx';
import { ApiContext } from './hooks/useApi.ts';
import { ConnectionContext, useConnectionState } from './hooks/useConnection.ts';
import { JobStoreContext } from './hooks/useJobs.ts';
import { useRoute } from './hooks/useRoute.ts';
import { createJobStore } from './lib/job-store.ts';
import type { Route } from './lib/route.ts';
import { EvaluatePage } from './pages/EvaluatePage.tsx';
import { HistoryDetailPage } from './pages/HistoryDetailPage.tsx';
import { HistoryPage } from './pages/HistoryPage.tsx';
import { SweepPage } from './pages/SweepPage.tsx';
import { ComparePage } from './pages/ComparePage.tsx';
import { ParetoPage } from './pages/ParetoPage.tsx';
import { compareSelection } from './components/CompareSelectedButton.tsx';
import { ExportBundleButton } from './components/BundleButtons.tsx';
import { HomePage } from './pages/HomePage.tsx';
import { ModelPage } from './pages/ModelPage.tsx';
import { NotFoundPage } from './pages/NotFoundPage.tsx';
import { PrunePage } from './pages/PrunePage.tsx';
import { TrainPage } from './pages/TrainPage.tsx';
import { DistillPage } from './pages/DistillPage.tsx';
import { QuantizePage } from './pages/QuantizePage.tsx';

/** What the history list offers for the ticked experiments: compare them, export them as a bundle. */
const historySelection = (selected: readonly number[]): ReactNode => (
  <>{compareSelection(selected)}<ExportBundleButton ids={selected} size="xs" /></>
);

function Page({ route }: { route: Route }) {
  switch (route.name) {
    case 'home': return <HomePage />;
    case 'model': return <ModelPage path={route.path} />;
    case 'evaluate': return <EvaluatePage path={route.path} jobId={route.jobId} experimentId={route.experimentId} />;
    case 'quantize': return <QuantizePage path={route.path} jobId={route.jobId} experimentId={route.experimentId} from={route.from ?? null} />;
    case 'prune': return <PrunePage path={route.path} jobId={route.jobId} experimentId={route.experimentId} from={route.from ?? null} />;
    case 'train': return <TrainPage path={route.path} jobId={route.jobId} experimentId={route.experimentId} from={route.from ?? null} />;
    case 'distill': return <DistillPage path={route.path} jobId={route.jobId} experimentId={route.experimentId} from={route.from ?? null} />;
    case 'history': return <HistoryPage query={route.query} selectionActions={historySelection} />;
    case 'historyDetail': return <HistoryDetailPage id={route.id} />;
    case 'sweep': return <SweepPage id={route.id} />;
    case 'compare': return <ComparePage ids={route.ids} baseline={route.baseline} />;
    case 'pareto': return <ParetoPage sha256={route.sha256} path={route.path} />;
    case 'notFound': return <NotFoundPage hash={route.hash} />;
  }
}

const TITLES: Record<Route['name'], string> = {
  home: 'Models', model: 'Model', evaluate: 'Evaluate', quantize: 'Quantize', prune: 'Prune', train: 'Train', distill: 'Distill', history: 'History', historyDetail: 'Experiment', sweep: 'Sweep', compare: 'Compare', pareto: 'Pareto view', notFound: 'Not found',
};

export function App({ api }: { api: WhittleApi }) {
  const store = useMemo(() => createJobStore(api), [api]);
  useEffect(() => () => store.dispose(), [store]);
  const connection = useConnectionState(api);
  const { route, visit } = useRoute();
  useEffect(() => { document.title = `${TITLES[route.name]} · Whittle`; }, [route.name]);

  return (
    <ApiContext.Provider value={api}>
      <ConnectionContext.Provider value={connection}>
        <JobStoreContext.Provider value={store}>
          <ToastProvider>
            <AppShell header={{ height: 56 }} padding="md">
              <AppShell.Header><AppHeader route={route} /></AppShell.Header>
              <AppShell.Main>
                <Container size="xl" px={0} pb="xl">
                  <ConnectionBanner />
                  {/* A fresh page on every real navigation; state recorded with replaceHash keeps it. */}
                  <Page key={`${route.name}/${visit}`} route={route} />
                </Container>
              </AppShell.Main>
            </AppShell>
          </ToastProvider>
        </JobStoreContext.Provider>
      </ConnectionContext.Provider>
    </ApiContext.Provider>
  );
}
