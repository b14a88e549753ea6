import { createContext, useContext } from 'react';
import type { ErrorShape } from '../../preload/contract.ts';

export interface Toast {
  id: number;
  title: string;
  message: string;
  color: 'red' | 'green' | 'blue' | 'yellow';
}

export interface ToastApi {
  show(toast: Omit<Toast, 'id'>): void;
  /** A failed call, titled by its error code. */
  error(e: unknown, context?: string): ErrorShape;
}

export const ToastContext = createContext<ToastApi | null>(null);

export function useToast(): ToastApi {
  const t = useContext(ToastContext);
  if (!t) throw new Error('useToast() outside <ToastProvider>');
  return t;
}
