/**
 * The desktop app's rules as plain functions (no Electron import, so they are tested under Node): which
 * URLs are ours, which IPC senders may call, which links may open outside, where a page or frame may
 * navigate, how files.reveal shows a file, and the page's CSP.
 */
import { stat } from 'node:fs/promises';
import type { SenderCheck, SenderInfo } from '../api/router.ts';
import type { Dialogs } from '../api/services.ts';

export const APP_SCHEME = 'whittle';
export const APP_ORIGIN = `${APP_SCHEME}://app`;
export const APP_ENTRY = `${APP_ORIGIN}/index.html`;

/** The renderer's Content-Security-Policy in the desktop app (Mantine needs inline styles; no inline scripts). */
export const DESKTOP_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function isAppUrl(url: string | undefined | null): boolean {
  if (!url) return false;
  try {
    const u = new URL(url);
    return u.protocol === `${APP_SCHEME}:` && u.host === 'app' && u.username === '' && u.password === '';
  } catch {
    return false;
  }
}

/** Only https links leave the app (in the system browser); file:, javascript:, http: and the rest never. */
export function isSafeExternalUrl(url: string): boolean {
  try {
    return new URL(url).protocol === 'https:';
  } catch {
    return false;
  }
}

/** Calls are accepted only from the main frame of our own window showing our own page. */
export const desktopSenderCheck: SenderCheck = (sender) =>
  sender.transport === 'electron' && sender.isMainFrame === true && isAppUrl(sender.frameUrl);

/** The parts of an IPC event the sender check looks at (Electron's IpcMainInvokeEvent has them). */
export interface IpcSenderLike {
  sender: { id: number; mainFrame: unknown };
  senderFrame: { url: string } | null;
}

export function senderFromIpc(event: IpcSenderLike, windowContentsIds: readonly number[]): SenderInfo {
  const frame = event.senderFrame;
  const ours = windowContentsIds.includes(event.sender.id);
  return {
    transport: 'electron',
    frameUrl: frame?.url,
    isMainFrame: ours && frame !== null && frame === event.sender.mainFrame,
  };
}

/** A page or any frame in it may navigate only from our page to our page (will-navigate, will-frame-navigate). */
export function navigationAllowed(targetUrl: string, currentUrl: string | undefined | null): boolean {
  return isAppUrl(targetUrl) && isAppUrl(currentUrl);
}

/**
 * files.reveal on the desktop: the file or folder is shown selected in its parent folder by the file
 * manager (`shell.showItemInFolder`), never opened — opening a file would launch it with its default
 * application, and a folder could hold one the user did not mean to run.
 */
export function revealInFolder(showItemInFolder: (fullPath: string) => void): NonNullable<Dialogs['reveal']> {
  return async (target) => {
    try {
      await stat(target);
    } catch {
      return { opened: false, reason: `There is nothing at ${target} any more: it was moved or deleted.` };
    }
    showItemInFolder(target);
    return { opened: true };
  };
}
