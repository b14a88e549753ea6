import { useEffect, useState } from 'react';
import { parseHash, type Route } from '../lib/route.ts';

const REPLACED = 'whittle:hash-replaced';

export interface RouteState {
  route: Route;
  /** Changes on real navigation (links, back/forward), not on replaceHash: pages are keyed by it so a
   *  visit starts fresh while recording state in the URL keeps the page as it is. */
  visit: number;
}

/** The current route, following `location.hash`. */
export function useRoute(): RouteState {
  const [state, setState] = useState(() => ({ hash: location.hash, visit: 0 }));
  useEffect(() => {
    const onNavigate = () => setState((s) => ({ hash: location.hash, visit: s.visit + 1 }));
    const onReplace = () => setState((s) => ({ hash: location.hash, visit: s.visit }));
    window.addEventListener('hashchange', onNavigate);
    window.addEventListener(REPLACED, onReplace);
    return () => {
      window.removeEventListener('hashchange', onNavigate);
      window.removeEventListener(REPLACED, onReplace);
    };
  }, []);
  return { route: parseHash(state.hash), visit: state.visit };
}

/** Go to a page (a new history entry). */
export function navigate(href: string): void {
  if (location.hash !== href) location.hash = href;
}

/** Record state in the URL (filters, a started job) without a new history entry or a fresh page. */
export function replaceHash(href: string): void {
  if (location.hash === href) return;
  history.replaceState(history.state, '', href);
  window.dispatchEvent(new Event(REPLACED));
}
