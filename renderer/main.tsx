import '@mantine/core/styles.css';
import '@mantine/charts/styles.css';
import './styles.css';
import { MantineProvider } from '@mantine/core';
import { config as zodConfig } from 'zod';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { getApi, MissingTokenError } from './bridge/index.ts';
import { NoTokenPage } from './pages/NoTokenPage.tsx';
import { theme } from './theme.ts';

// zod would otherwise probe `new Function` once, which a strict content security policy reports.
zodConfig({ jitless: true });

function root() {
  try {
    return <App api={getApi()} />;
  } catch (e) {
    if (e instanceof MissingTokenError) return <NoTokenPage />;
    throw e;
  }
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <MantineProvider theme={theme} defaultColorScheme="auto">
      {root()}
    </MantineProvider>
  </StrictMode>,
);
