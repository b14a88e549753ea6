/**
 * The history bundle (`whittle history export` / `import`): one tar file.
 *
 *   whittle-bundle.json   first: { format: "whittle-bundle", version, app, created } — what the file is
 *   experiments.json      the experiments: their rows, metrics, artefacts, log, details, notes, tags,
 *                         lineage and group as ids of the exporting history ("keys"), remapped on import
 *   groups.json           the sweep groups they belong to
 *   outputs/<key>/<n>     optionally, the files of each experiment's output folders
 *   manifest.json         last: every other member's name, size and sha256
 */
import { z } from 'zod';

export const BUNDLE_FORMAT = 'whittle-bundle';
export const BUNDLE_VERSION = 1;
export const MARKER_MEMBER = 'whittle-bundle.json';
export const MANIFEST_MEMBER = 'manifest.json';
export const EXPERIMENTS_MEMBER = 'experiments.json';
export const GROUPS_MEMBER = 'groups.json';
export const BUNDLE_EXTENSION = '.whittle';

export const Marker = z.object({ format: z.string(), version: z.number(), app: z.string().optional(), created: z.string().optional() });

export const Manifest = z.strictObject({
  format: z.literal(BUNDLE_FORMAT),
  version: z.number(),
  app: z.string(),
  created: z.string(),
  experiments: z.int().nonnegative(),
  withOutputs: z.boolean(),
  members: z.array(z.strictObject({ name: z.string().min(1), bytes: z.int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
});
export type Manifest = z.infer<typeof Manifest>;

const Cell = z.union([z.string(), z.number(), z.null()]);

export const OutputFile = z.strictObject({ member: z.string().min(1), path: z.string().min(1), bytes: z.int().nonnegative(), sha256: z.string() });

export const BundleExperiment = z.strictObject({
  key: z.int().positive(),
  /** The experiments row without its id and references (column → value). */
  row: z.record(z.string(), Cell),
  parent: z.int().positive().nullable(),
  input: z.int().positive().nullable(),
  group: z.int().positive().nullable(),
  metrics: z.array(z.strictObject({ name: z.string(), value: z.number().nullable(), unit: z.string(), subject: z.string() })),
  artefacts: z.array(z.strictObject({ kind: z.string(), path: z.string(), bytes: z.number().nullable() })),
  events: z.array(z.strictObject({ seq: z.int(), time: z.string(), level: z.string(), text: z.string() })),
  tags: z.array(z.string()),
  /** The details as stored (JSON text). */
  details: z.string().nullable(),
  /** Packed output folders: the folder as it was, and its files (paths relative to it). */
  outputs: z.array(z.strictObject({ folder: z.string().min(1), files: z.array(OutputFile) })),
});
export type BundleExperiment = z.infer<typeof BundleExperiment>;

export const BundleGroup = z.strictObject({ key: z.int().positive(), row: z.record(z.string(), Cell) });
export type BundleGroup = z.infer<typeof BundleGroup>;
