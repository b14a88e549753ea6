/**
 * The Electron transport: `whittle:call` (invoke → ReplyMessage) and `whittle:event` (main → window).
 * The sender is described from the IPC event itself — the frame that sent it, whether that is the main
 * frame of one of our windows — and the router's check decides.
 */
import { ipcMain, type BrowserWindow } from 'electron';
import type { EventBus } from '../api/events.ts';
import type { Router } from '../api/router.ts';
import { senderFromIpc } from './policy.ts';

export const CALL_CHANNEL = 'whittle:call';
export const EVENT_CHANNEL = 'whittle:event';

/** Installs the call handler and forwards events to every window; returns the function that removes both. */
export function bridgeIpc(router: Router, events: EventBus, windows: () => readonly BrowserWindow[]): () => void {
  ipcMain.handle(CALL_CHANNEL, (event, message: unknown) => {
    const ids = windows().filter((w) => !w.isDestroyed()).map((w) => w.webContents.id);
    return router.dispatch(message, senderFromIpc(event, ids));
  });
  const unsubscribe = events.subscribe((message) => {
    for (const window of windows()) {
      if (!window.isDestroyed() && !window.webContents.isDestroyed()) window.webContents.send(EVENT_CHANNEL, message);
    }
  });
  return () => {
    ipcMain.removeHandler(CALL_CHANNEL);
    unsubscribe();
  };
}
