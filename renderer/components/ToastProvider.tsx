import { Notification, Stack } from '@mantine/core';
import { useCallback, useMemo, useRef, useState, type ReactNode } from 'react';
import { errorTitleFor, toUiError } from '../lib/errors.ts';
import { ToastContext, type Toast, type ToastApi } from '../hooks/useToast.ts';

const LIFETIME_MS = 8000;

/** Short-lived messages in the bottom-right corner (errors from calls, confirmations). */
export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const nextId = useRef(1);

  const dismiss = useCallback((id: number) => setToasts((list) => list.filter((t) => t.id !== id)), []);

  const api = useMemo<ToastApi>(() => {
    const show: ToastApi['show'] = (toast) => {
      const id = nextId.current++;
      setToasts((list) => [...list.slice(-3), { ...toast, id }]);
      window.setTimeout(() => dismiss(id), LIFETIME_MS);
    };
    const error: ToastApi['error'] = (e, context) => {
      const shape = toUiError(e);
      show({ title: context ? `${context}: ${errorTitleFor(shape)}` : errorTitleFor(shape), message: shape.message, color: 'red' });
      return shape;
    };
    return { show, error };
  }, [dismiss]);

  return (
    <ToastContext.Provider value={api}>
      {children}
      <Stack className="toasts" gap="xs" data-testid="toasts">
        {toasts.map((t) => (
          <Notification key={t.id} title={t.title} color={t.color} onClose={() => dismiss(t.id)} withBorder data-testid="toast">
            {t.message}
          </Notification>
        ))}
      </Stack>
    </ToastContext.Provider>
  );
}
