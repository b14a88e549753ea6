import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { appRoot } from '../../../main/paths.ts';
import { STORIES } from '../../helpers/fixtures.ts';

describe('paths', () => {
  it('finds the app root and the shared fixtures', () => {
    expect(existsSync(`${appRoot()}/package.json`)).toBe(true);
    expect(existsSync(STORIES.model)).toBe(true);
  });
});
