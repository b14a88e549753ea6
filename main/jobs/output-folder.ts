/** Per-job output folders: `<outputRoot>/<experimentId>-<slug of the name>/`. */

const MAX_SLUG = 48;

export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, MAX_SLUG)
    .replace(/^-+|-+$/g, '');
  return slug || 'job';
}

export function jobFolderName(experimentId: number, name: string): string {
  return `${experimentId}-${slugify(name)}`;
}
