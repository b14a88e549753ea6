import { createContext, useContext } from 'react';
import type { WhittleApi } from '../../preload/contract.ts';

export const ApiContext = createContext<WhittleApi | null>(null);

export function useApi(): WhittleApi {
  const api = useContext(ApiContext);
  if (!api) throw new Error('useApi() outside <ApiContext.Provider>');
  return api;
}
