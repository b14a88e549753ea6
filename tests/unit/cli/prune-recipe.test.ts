// `whittle prune` flags → the recipe's prune step; flags that do not fit are usage errors naming them.
import { describe, expect, it } from 'vitest';
import { UsageError, type OptionValues } from '../../../main/cli/args.ts';
import { pruneCommand } from '../../../main/cli/commands.ts';
import { pruneRecipe } from '../../../main/cli/prune.ts';
import { PRUNE_METHODS } from '../../../preload/methods.ts';
import { STORIES } from '../../helpers/fixtures.ts';

const CALIB = { 'calib-text': STORIES.text, 'calib-samples': 8, 'calib-len': 64 };

describe('whittle prune', () => {
  it('builds the unstructured step: method, sparsity, pattern, allocation, joint 4-bit, one pass', () => {
    const r = pruneRecipe(STORIES.model, { method: 'sparsegpt', sparsity: '0.5', allocation: 'owl', 'quantize-bits': '4', 'block-size': 32, 'one-pass': true, ...CALIB });
    expect(r.steps?.[0]).toMatchObject({
      type: 'prune', method: 'sparsegpt', sparsity: 0.5, allocation: 'owl', sequential: false, quantize: { bits: 4, blockSize: 32 },
      calibration: { samples: 8, length: 64 },
    });
    expect(pruneRecipe(STORIES.model, { method: 'magnitude', pattern: '2:4' }).steps?.[0]).toMatchObject({ method: 'magnitude', pattern: '2:4' });
    expect(pruneRecipe(STORIES.model, { scope: 'global', sparsity: '0.3' }).steps?.[0]).toMatchObject({ method: 'magnitude', scope: 'global', sparsity: 0.3 });
  });

  it('builds the structured step from --structured with --ratio or --count', () => {
    expect(pruneRecipe(STORIES.model, { structured: 'layers', count: 2 }).steps?.[0]).toEqual({ type: 'prune', method: 'structured', target: 'layers', count: 2 });
    expect(pruneRecipe(STORIES.model, { structured: 'heads', ratio: '0.25', importance: 'activation', ...CALIB }).steps?.[0])
      .toMatchObject({ method: 'structured', target: 'heads', ratio: 0.25, importance: 'activation' });
  });

  it('bad input is a usage error naming the flag', () => {
    const bad = (o: OptionValues, re: RegExp): void => {
      const e = (() => { try { pruneRecipe(STORIES.model, o); return null; } catch (x) { return x; } })();
      expect(e).toBeInstanceOf(UsageError);
      expect((e as Error).message).toMatch(re);
    };
    bad({ sparsity: '1' }, /--sparsity: sparsity must be below 1/);
    bad({ sparsity: '0' }, /--sparsity: sparsity must be above 0/);
    bad({ sparsity: 'half' }, /--sparsity needs a number/);
    bad({ pattern: '4:2' }, /--pattern/);
    bad({ method: 'wanda' }, /--method wanda calibrates on real text/);
    bad({ method: 'sparsegpt', pattern: '2:4', sparsity: '0.3', ...CALIB }, /--sparsity: the pattern 2:4 prunes 0.5/);
    bad({ method: 'wanda', scope: 'global', ...CALIB }, /--scope only applies to --method magnitude/);
    bad({ 'quantize-bits': '4' }, /--quantize-bits and --percdamp only apply to --method sparsegpt/);
    bad({ structured: 'heads' }, /exactly one of --ratio R .* or --count N/);
    bad({ structured: 'heads', ratio: '0.5', count: 1 }, /exactly one/);
    bad({ structured: 'heads', count: 1, sparsity: '0.5' }, /--sparsity does not apply to --structured/);
    bad({ ratio: '0.5' }, /--ratio only applies with --structured/);
  });

  it('the help lists every pruning method with its summary', () => {
    for (const d of PRUNE_METHODS) expect(pruneCommand.notes?.some((n) => n.includes(d.summary)), d.key).toBe(true);
  });
});
