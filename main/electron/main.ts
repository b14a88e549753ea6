/**
 * The desktop app's main process: single instance, one sandboxed window showing the renderer through
 * `whittle://app/`, the contract over IPC, engine processes as Electron utility processes, the history in
 * WHITTLE_HOME or the user-data folder. Everything else is the same app the CLI and serve mode run.
 */
import path from 'node:path';
import { app, BrowserWindow, Menu, session, type MenuItemConstructorOptions } from 'electron';
import { createWhittleApp, type WhittleApp } from '../app.ts';
import { fileLogger } from '../api/logger.ts';
import { UtilityProcessHost } from '../jobs/utility-process-host.ts';
import { appPaths } from '../paths.ts';
import { electronDialogs } from './dialogs.ts';
import { bridgeIpc } from './ipc.ts';
import { registerAppScheme, serveAppProtocol } from './protocol.ts';
import { APP_ENTRY, desktopSenderCheck } from './policy.ts';
import { hardenContents, hardenSession } from './security.ts';

let mainWindow: BrowserWindow | null = null;
let whittle: WhittleApp | null = null;
let shutDown = false;

function createWindow(): BrowserWindow {
  const window = new BrowserWindow({
    width: 1280,
    height: 860,
    minWidth: 900,
    minHeight: 600,
    title: 'Whittle',
    show: false,
    webPreferences: {
      preload: path.join(appPaths.out(), 'preload.cjs'),
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      webviewTag: false,
      navigateOnDragDrop: false,
      spellcheck: false,
    },
  });
  window.once('ready-to-show', () => window.show());
  window.on('closed', () => { if (mainWindow === window) mainWindow = null; });
  void window.loadURL(APP_ENTRY);
  return window;
}

function buildMenu(): void {
  const template: MenuItemConstructorOptions[] = [
    ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : [{ label: 'File', submenu: [{ role: 'quit' as const }] }]),
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        { role: 'reload' },
        ...(app.isPackaged ? [] : [{ role: 'toggleDevTools' as const }]),
        { type: 'separator' },
        { role: 'resetZoom' }, { role: 'zoomIn' }, { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    { role: 'windowMenu' },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}

function whittleHome(): string {
  const override = process.env.WHITTLE_HOME?.trim();
  return override ? path.resolve(override) : app.getPath('userData');
}

async function start(): Promise<void> {
  const home = whittleHome();
  const logger = fileLogger(path.join(home, 'logs', 'main.log'), { debug: !!process.env.WHITTLE_DEBUG });
  hardenSession(session.defaultSession);
  serveAppProtocol(appPaths.renderer());
  buildMenu();

  whittle = createWhittleApp({
    home,
    transport: 'electron',
    host: await UtilityProcessHost.fromElectron(appPaths.engineWorker()),
    dialogs: electronDialogs(() => mainWindow),
    checkSender: desktopSenderCheck,
    logger,
  });
  bridgeIpc(whittle.router, whittle.events, () => (mainWindow ? [mainWindow] : []));
  mainWindow = createWindow();

  app.on('activate', () => {
    if (!mainWindow) mainWindow = createWindow();
  });
}

registerAppScheme();

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  app.on('web-contents-created', (_event, contents) => hardenContents(contents));
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  // Running jobs are stopped and the history closed before the process ends.
  app.on('before-quit', (event) => {
    if (shutDown || !whittle) return;
    event.preventDefault();
    const closing = whittle;
    whittle = null;
    void closing.close()
      .catch((error: unknown) => closing.logger.log('error', 'shutdown failed', error))
      .finally(() => {
        shutDown = true;
        app.quit();
      });
  });
  app.whenReady()
    .then(start)
    .catch((error: unknown) => {
      process.stderr.write(`Whittle could not start: ${error instanceof Error ? error.stack : String(error)}\n`);
      app.exit(1);
    });
}
