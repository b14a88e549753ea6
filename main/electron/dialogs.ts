/** Native open dialogs for models.pickFile, attached to the window that asked, and files.reveal. */
import { dialog, shell, type BrowserWindow, type OpenDialogOptions } from 'electron';
import type { Dialogs, PickPurpose } from '../api/services.ts';
import { revealInFolder } from './policy.ts';

const OPTIONS: Record<PickPurpose, OpenDialogOptions> = {
  model: { title: 'Choose an ONNX model', properties: ['openFile'], filters: [{ name: 'ONNX models', extensions: ['onnx'] }, { name: 'All files', extensions: ['*'] }] },
  tokenizer: { title: 'Choose a tokenizer.json', properties: ['openFile'], filters: [{ name: 'Tokenizer', extensions: ['json'] }, { name: 'All files', extensions: ['*'] }] },
  text: { title: 'Choose a text file', properties: ['openFile'], filters: [{ name: 'Text and data', extensions: ['txt', 'jsonl', 'json', 'csv', 'tsv'] }, { name: 'All files', extensions: ['*'] }] },
  folder: { title: 'Choose a folder', properties: ['openDirectory', 'createDirectory'] },
  bundle: { title: 'Choose a Whittle bundle', properties: ['openFile'], filters: [{ name: 'Whittle bundles', extensions: ['whittle'] }, { name: 'All files', extensions: ['*'] }] },
};

export function electronDialogs(window: () => BrowserWindow | null): Dialogs {
  return {
    async pickFile(purpose) {
      const parent = window();
      const result = parent ? await dialog.showOpenDialog(parent, OPTIONS[purpose]) : await dialog.showOpenDialog(OPTIONS[purpose]);
      return result.canceled || result.filePaths.length === 0 ? null : result.filePaths[0];
    },

    reveal: revealInFolder((target) => shell.showItemInFolder(target)),
  };
}
