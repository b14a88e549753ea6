export { exportBundle, type BundleHistory, type ExportOptions } from './export.ts';
export { checkBundle, importBundle, type ImportOptions } from './import.ts';
export { BUNDLE_EXTENSION, BUNDLE_FORMAT, BUNDLE_VERSION } from './format.ts';
