/**
 * Taylor importance without onnxruntime: the group sums of w·g against a plain per-group reference on the
 * stories260K architecture (GQA: 8 heads, 4 KV heads; MLP 172), with biases added to the map; the
 * calibration batches; and the one list of importances that the schema, CLI, wizard and plan preview read.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../main/cli/args.ts';
import { pruneCommand } from '../../../main/cli/commands.ts';
import { pruneRecipe } from '../../../main/cli/prune.ts';
import { planPruneAt } from '../../../main/api/prune-plan.ts';
import { mulberry32 } from '../../../main/engine/calibrate/prng.ts';
import { toNumber } from '../../../main/engine/onnx/graph.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { calibrationBatches, taylorScoresFrom, taylorWeights, type WeightValues } from '../../../main/engine/prune/taylor-importance.ts';
import { mapArchitecture, type ArchitectureMap } from '../../../main/engine/rewrite/architecture.ts';
import { PRUNE_STRUCTURED } from '../../../preload/methods.ts';
import { PruneStep, PruneStructuredStep, STRUCTURED_IMPORTANCES, type TaylorAggregate } from '../../../preload/recipe.ts';
import { CALIBRATED_IMPORTANCES, IMPORTANCES, needsCalibration } from '../../../renderer/lib/prune-form.ts';
import { STORIES } from '../../helpers/fixtures.ts';

/** The sample's map with a q, k, v bias in block 1 and a gate and up bias in block 2 (names only; values below). */
async function mapWithBiases(): Promise<{ map: ArchitectureMap; dims: Map<string, number[]> }> {
  const model = await readModel(STORIES.model);
  const map = structuredClone(mapArchitecture(model));
  const dims = new Map(model.proto.graph!.initializer.map((t) => [t.name ?? '', t.dims.map((d) => toNumber(d))]));
  const a = map.blocks[1].attention, m = map.blocks[2].mlp;
  a.biases.q = 'bias.q'; a.biases.k = 'bias.k'; a.biases.v = 'bias.v';
  m.biases.gate = 'bias.gate'; m.biases.up = 'bias.up';
  const d = a.headSize!;
  dims.set('bias.q', [a.heads! * d]).set('bias.k', [a.kvHeads! * d]).set('bias.v', [a.kvHeads! * d]);
  dims.set('bias.gate', [m.intermediate!]).set('bias.up', [m.intermediate!]);
  return { map, dims };
}

/** Random values for every weight the target's scores read. */
function randomTensors(names: Iterable<string>, dims: Map<string, number[]>, seed: number): Map<string, WeightValues> {
  const rng = mulberry32(seed);
  const out = new Map<string, WeightValues>();
  for (const name of names) {
    const shape = dims.get(name)!;
    const data = new Float32Array(shape.reduce((x, y) => x * y, 1));
    for (let i = 0; i < data.length; i++) data[i] = rng.next() * 2 - 1;
    out.set(name, { dims: shape, data });
  }
  return out;
}

/** Plain reference: the entries of each group listed one by one, Σ w·g/tokens (then |·|) or Σ |w·g/tokens|. */
function reference(map: ArchitectureMap, target: 'heads' | 'neurons' | 'layers', aggregate: TaylorAggregate, tokens: number,
  w: Map<string, WeightValues>, g: Map<string, WeightValues>): number[][] {
  const term = (name: string | null, i: number): number => (name && w.has(name) ? (w.get(name)!.data[i] * g.get(name)!.data[i]) / tokens : 0);
  const cols = (name: string | null): number => (name ? w.get(name)?.dims[1] ?? 1 : 1);
  const rows = (name: string | null): number => (name ? w.get(name)?.dims[0] ?? 0 : 0);
  return map.blocks.map((b) => {
    const a = b.attention, m = b.mlp;
    const entries = (part: number): { name: string | null; i: number }[] => {
      const list: { name: string | null; i: number }[] = [];
      const column = (name: string | null, c0: number, c1: number): void => { for (let r = 0; r < rows(name); r++) for (let c = c0; c < c1; c++) list.push({ name, i: r * cols(name) + c }); };
      const row = (name: string | null, r0: number, r1: number): void => { for (let r = r0; r < r1; r++) for (let c = 0; c < cols(name); c++) list.push({ name, i: r * cols(name) + c }); };
      const entry = (name: string | null, i0: number, i1: number): void => { if (name && w.has(name)) for (let i = i0; i < i1; i++) list.push({ name, i }); };
      if (target === 'neurons') {
        column(m.gate, part, part + 1); column(m.up, part, part + 1); row(m.down, part, part + 1);
        entry(m.biases.gate, part, part + 1); entry(m.biases.up, part, part + 1);
      } else if (target === 'heads') {
        const d = a.headSize!, qw = (a.heads! / a.kvHeads!) * d;
        column(a.q, part * qw, (part + 1) * qw); column(a.k, part * d, (part + 1) * d); column(a.v, part * d, (part + 1) * d); row(a.o, part * qw, (part + 1) * qw);
        entry(a.biases.q, part * qw, (part + 1) * qw); entry(a.biases.k, part * d, (part + 1) * d); entry(a.biases.v, part * d, (part + 1) * d);
      } else {
        for (const name of [a.q, a.k, a.v, a.o, m.gate, m.up, m.down, a.biases.q, a.biases.k, a.biases.v, m.biases.gate, m.biases.up]) if (name && w.has(name)) entry(name, 0, w.get(name)!.data.length);
      }
      return list;
    };
    const parts = target === 'heads' ? a.kvHeads! : target === 'neurons' ? m.intermediate! : 1;
    return Array.from({ length: parts }, (_, k) => {
      const terms = entries(k).map((e) => term(e.name, e.i));
      return aggregate === 'group' ? Math.abs(terms.reduce((x, y) => x + y, 0)) : terms.reduce((x, y) => x + Math.abs(y), 0);
    });
  });
}

describe('taylorScoresFrom against a plain per-group reference', () => {
  for (const target of ['neurons', 'heads', 'layers'] as const) {
    for (const aggregate of ['group', 'element'] as const) {
      it(`${target}, ${aggregate}: every part's score equals the reference (relative 1e-9)`, async () => {
        const { map, dims } = await mapWithBiases();
        const names = [...taylorWeights(map, target).keys()];
        const w = randomTensors(names, dims, 1), g = randomTensors(names, dims, 2);
        const tokens = 37;
        const got = taylorScoresFrom(map, target, aggregate, tokens, (n) => w.get(n), (n) => g.get(n)?.data);
        const want = reference(map, target, aggregate, tokens, w, g);
        expect(got.map((r) => r.length)).toEqual(want.map((r) => r.length));
        let worst = 0;
        got.forEach((row, b) => row.forEach((s, k) => { worst = Math.max(worst, Math.abs(s - want[b][k]) / Math.max(1e-12, want[b][k])); }));
        expect(worst).toBeLessThan(1e-9);
      });
    }
  }

  it('the biases belong to the groups: a bias gradient changes only its own group', async () => {
    const { map, dims } = await mapWithBiases();
    const names = [...taylorWeights(map, 'neurons').keys()];
    const w = randomTensors(names, dims, 3), g = randomTensors(names, dims, 4);
    const before = taylorScoresFrom(map, 'neurons', 'element', 1, (n) => w.get(n), (n) => g.get(n)?.data);
    g.get('bias.up')!.data[7] += 10;
    const after = taylorScoresFrom(map, 'neurons', 'element', 1, (n) => w.get(n), (n) => g.get(n)?.data);
    const changed = after.flatMap((row, b) => row.flatMap((s, j) => (s !== before[b][j] ? [[b, j]] : [])));
    expect(changed).toEqual([[2, 7]]);
  });

  it('names the matrices as required and the biases as optional', async () => {
    const { map } = await mapWithBiases();
    const heads = taylorWeights(map, 'heads');
    expect(heads.get(map.blocks[0].attention.o!)).toEqual({ required: true });
    expect(heads.get('bias.k')).toEqual({ required: false });
    expect(heads.has(map.blocks[0].mlp.up!)).toBe(false);
    expect(taylorWeights(map, 'layers').size).toBe(map.blocks.length * 7 + 5);
  });
});

describe('calibration batches', () => {
  it('inputs are a sample\'s first L − 1 ids, labels its last L − 1; the rows past the samples are padding', () => {
    const samples = [[1, 2, 3, 4, 5], [1, 6, 7, 8, 9], [1, 10, 11, 12, 13]];
    const batches = calibrationBatches(samples, 2);
    expect(batches).toHaveLength(2);
    expect(Array.from(batches[0].inputIds, Number)).toEqual([1, 2, 3, 4, 1, 6, 7, 8]);
    expect(Array.from(batches[0].labels, Number)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    expect(Array.from(batches[1].inputIds, Number)).toEqual([1, 10, 11, 12, 0, 0, 0, 0]);
    expect(Array.from(batches[1].labels, Number)).toEqual([10, 11, 12, 13, -1, -1, -1, -1]);
  });
});

describe('one list of importances, from the schema', () => {
  const base = { type: 'prune', method: 'structured', target: 'neurons', ratio: 0.25 };
  const calibration = { text: STORIES.text, samples: 4, length: 32 };

  it('the schema: taylor needs calibration, works for heads, neurons and layers; taylorAggregate only with taylor', () => {
    const issues = (s: Record<string, unknown>): string[] => {
      const r = PruneStructuredStep.safeParse(s);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ ...base, importance: 'taylor' })).toEqual(['calibration: the taylor importance is measured on calibration text: add calibration']);
    for (const target of ['heads', 'neurons', 'layers']) expect(issues({ ...base, target, importance: 'taylor', calibration })).toEqual([]);
    expect(issues({ ...base, importance: 'taylor', taylorAggregate: 'element', calibration })).toEqual([]);
    expect(issues({ ...base, taylorAggregate: 'group' })).toEqual(['taylorAggregate: taylorAggregate applies to the taylor importance only']);
    expect(issues({ ...base, importance: 'taylor', taylorAggregate: 'sum', calibration })[0]).toMatch(/^taylorAggregate: /);
  });

  it('the CLI offers every importance, and builds the taylor step with its aggregate', () => {
    expect(pruneCommand.options.find((o) => o.name === 'importance')?.choices).toEqual([...STRUCTURED_IMPORTANCES]);
    expect(PRUNE_STRUCTURED.options.map((o) => o.flag)).toContain('taylor-aggregate');
    const calib = { 'calib-text': STORIES.text, 'calib-samples': 8, 'calib-len': 64 };
    expect(pruneRecipe(STORIES.model, { structured: 'neurons', ratio: '0.25', importance: 'taylor', 'taylor-aggregate': 'element', ...calib }).steps?.[0])
      .toMatchObject({ method: 'structured', target: 'neurons', importance: 'taylor', taylorAggregate: 'element', calibration: { samples: 8, length: 64 } });
    const e = (() => { try { pruneRecipe(STORIES.model, { method: 'magnitude', 'taylor-aggregate': 'element' }); return null; } catch (x) { return x; } })();
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toMatch(/--taylor-aggregate only applies with --structured/);
  });

  it('the wizard lists every importance in the schema\'s order and asks calibration for all but magnitude', () => {
    expect(IMPORTANCES.map((i) => i.value)).toEqual([...STRUCTURED_IMPORTANCES]);
    expect(needsCalibration({ method: 'structured', importance: 'taylor', allocation: 'uniform', pattern: '' })).toBe(true);
    expect(needsCalibration({ method: 'structured', importance: 'magnitude', allocation: 'uniform', pattern: '' })).toBe(false);
    expect(CALIBRATED_IMPORTANCES).toBe('activation, block-influence or taylor');
  });

  it('the plan preview says the taylor importance is measured on the calibration text', async () => {
    const plan = await planPruneAt(STORIES.model, PruneStep.parse({ ...base, importance: 'taylor', calibration }));
    expect(plan.note).toMatch(/which ones, taylor importance decides when it runs, measured on the calibration text/);
    const magnitude = await planPruneAt(STORIES.model, PruneStep.parse(base));
    expect(magnitude.note).not.toMatch(/calibration/);
  });
});
