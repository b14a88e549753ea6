/** Sweep grids: command-line values, the cartesian product written into the recipe, and its checks. */
import { describe, expect, it } from 'vitest';
import {
  assignmentOf, expandSweep, parseGridArgument, parseGridArguments, parseGridValue, setPath, sweepIssues, sweepSize,
} from '../../../preload/sweep.ts';

const recipe = {
  model: { path: '/m/model.onnx' },
  steps: [{ type: 'quantize', method: 'rtn', bits: 4, blockSize: 32 }],
};

describe('grid arguments', () => {
  it('reads numbers and booleans as such, quoted JSON strings as strings, the rest as text', () => {
    expect(parseGridValue('4')).toBe(4);
    expect(parseGridValue('0.5')).toBe(0.5);
    expect(parseGridValue('1e-3')).toBe(0.001);
    expect(parseGridValue('true')).toBe(true);
    expect(parseGridValue('gptq')).toBe('gptq');
    expect(parseGridValue('"8"')).toBe('8');
    expect(parseGridValue('2:4')).toBe('2:4');
    expect(parseGridArgument('steps.0.method=rtn, gptq')).toEqual({ key: 'steps.0.method', values: ['rtn', 'gptq'] });
  });

  it('says what is wrong with a malformed argument', () => {
    expect(() => parseGridArgument('steps.0.bits')).toThrow(/is not key=v1,v2/);
    expect(() => parseGridArgument('steps..bits=4')).toThrow(/not a dotted path/);
    expect(() => parseGridArgument('steps.0.bits=4,,8')).toThrow(/none empty/);
    expect(() => parseGridArguments(['steps.0.bits=4', 'steps.0.bits=8'])).toThrow(/given twice/);
  });
});

describe('expansion', () => {
  it('is the cartesian product, the last key varying fastest, each a deep copy', () => {
    const grid = { 'steps.0.method': ['rtn', 'gptq'], 'steps.0.bits': [4, 8], 'steps.0.blockSize': [32, 128] };
    expect(sweepSize(grid)).toBe(8);
    const members = expandSweep(recipe, grid);
    expect(members).toHaveLength(8);
    expect(members.map((m) => m.assignment['steps.0.blockSize'])).toEqual([32, 128, 32, 128, 32, 128, 32, 128]);
    expect(members.map((m) => m.assignment['steps.0.method'])).toEqual(['rtn', 'rtn', 'rtn', 'rtn', 'gptq', 'gptq', 'gptq', 'gptq']);
    expect((members[7].recipe as typeof recipe).steps[0]).toEqual({ type: 'quantize', method: 'gptq', bits: 8, blockSize: 128 });
    expect(recipe.steps[0].bits).toBe(4); // the base recipe is not touched
    for (const m of members) expect(assignmentOf(m.recipe, grid)).toEqual(m.assignment);
  });

  it('creates missing objects, but not steps the recipe does not have', () => {
    const r = structuredClone(recipe) as Record<string, unknown>;
    setPath(r, 'evaluation.perplexity.window', 64);
    expect(r.evaluation).toEqual({ perplexity: { window: 64 } });
    expect(() => setPath(r, 'steps.2.bits', 4)).toThrow(/steps has 1 entry, so there is no 2/);
    expect(() => setPath(r, 'model.path.x', 4)).toThrow(/model.path is "\/m\/model.onnx", not an object/);
  });

  it('lists the schema issues of every invalid combination (GPTQ without calibration, 3 bits)', () => {
    const members = expandSweep(recipe, { 'steps.0.method': ['rtn', 'gptq'], 'steps.0.bits': [3, 4] });
    const issues = sweepIssues(members);
    const bad = new Set(issues.map((i) => JSON.stringify(i.assignment)));
    // rtn/3, gptq/3 (bits) and gptq/4 (calibration): three of four invalid.
    expect(bad.size).toBe(3);
    expect(bad.has(JSON.stringify({ 'steps.0.method': 'rtn', 'steps.0.bits': 4 }))).toBe(false);
    expect(issues.some((i) => i.path === 'steps.0.calibration')).toBe(true);
  });

  it('refuses a grid over the size limit', () => {
    const values = Array.from({ length: 32 }, (_, i) => i + 1);
    expect(() => expandSweep(recipe, { 'steps.0.bits': values, 'steps.0.blockSize': values })).toThrow(/1024 combinations; a sweep runs at most 256/);
  });
});
