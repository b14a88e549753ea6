/**
 * Applies the desktop policy (policy.ts) to Electron: CSP on every response, permissions denied, no
 * navigation away from our pages by the page or any frame, no new windows, no webviews. Applied to every web contents the app
 * creates.
 */
import { shell, type Session, type WebContents } from 'electron';
import { DESKTOP_CSP, isAppUrl, isSafeExternalUrl, navigationAllowed } from './policy.ts';

/** Links the user clicks open in the system browser, and only when they are https. */
export function openExternalSafely(url: string): void {
  if (isSafeExternalUrl(url)) void shell.openExternal(url);
}

export function hardenSession(session: Session): void {
  session.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.setPermissionCheckHandler(() => false);
  session.setDevicePermissionHandler(() => false);
  session.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [DESKTOP_CSP] } });
  });
}

export function hardenContents(contents: WebContents): void {
  contents.on('will-navigate', (event, url) => {
    if (navigationAllowed(url, contents.getURL())) return;
    event.preventDefault();
    openExternalSafely(url);
  });
  // Frames (iframes included) navigate under the same rule; a frame never opens anything outside.
  contents.on('will-frame-navigate', (event) => {
    if (!navigationAllowed(event.url, contents.getURL())) event.preventDefault();
  });
  contents.on('will-redirect', (event, url) => {
    if (!isAppUrl(url)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    openExternalSafely(url);
    return { action: 'deny' };
  });
}
