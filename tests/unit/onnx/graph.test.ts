/**
 * Graph helpers on a model with an If whose branches read an outer initializer: walking, consumer maps
 * that see subgraph reads, sweeping, node replacement, opsets and fresh names. The swept and rewritten
 * models are run with onnxruntime to show they still compute the same thing.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType } from '../../../main/engine/onnx/dtype.ts';
import {
  allGraphs, attrFloat, attrInt, attrInts, attrString, consumerMap, ensureOpset, findInitializer, floatAttr, initializerMap,
  intAttr, intsAttr, makeNode, NameScope, opsetVersion, outerReferences, producerMap, qualifiedOpType, replaceNode,
  stringAttr, sweepUnusedInitializers,
} from '../../../main/engine/onnx/graph.ts';
import { AttributeType, type ModelProto } from '../../../main/engine/onnx/proto-types.ts';
import { readModel } from '../../../main/engine/onnx/reader.ts';
import { makeTensor } from '../../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../../main/engine/onnx/writer.ts';
import { tempDir } from '../../helpers/fixtures.ts';
import { emptyGraph, modelOf, nodeOf, runBytes, valueInfo } from './helpers.ts';

const tmp = tempDir('whittle-graph-');
afterAll(() => tmp.cleanup());

const f32 = (name: string, values: number[]) => makeTensor(name, DataType.float32, [values.length], Float32Array.from(values));

/** y = If(cond) { W + sub_used } else { W * 2 }, plus an unused outer initializer listed as an input. */
function ifModel(): ModelProto {
  const thenBranch = emptyGraph({
    name: 'then',
    node: [nodeOf('Add', ['W', 'sub_used'], ['then_out'], 'then_add')],
    initializer: [f32('sub_used', [10, 20]), f32('sub_unused', [0])],
    output: [valueInfo('then_out', DataType.float32, [2])],
  });
  const elseBranch = emptyGraph({
    name: 'else',
    node: [nodeOf('Mul', ['W', 'two'], ['else_out'], 'else_mul')],
    output: [valueInfo('else_out', DataType.float32, [2])],
  });
  const ifNode = nodeOf('If', ['cond'], ['y'], 'if');
  ifNode.attribute = [
    { name: 'then_branch', type: AttributeType.GRAPH, g: thenBranch, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] },
    { name: 'else_branch', type: AttributeType.GRAPH, g: elseBranch, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] },
  ];
  return modelOf(emptyGraph({
    node: [ifNode, nodeOf('Identity', ['y'], ['z'], 'id')],
    initializer: [f32('W', [1, 2]), f32('two', [2, 2]), f32('unused', [5])],
    input: [valueInfo('cond', DataType.bool, []), valueInfo('unused', DataType.float32, [1])],
    output: [valueInfo('z', DataType.float32, [2])],
  }));
}

async function run(model: ModelProto, name: string, cond: boolean): Promise<Float32Array> {
  const file = path.join(tmp.dir, name);
  await writeModel(model, file);
  const out = await runBytes(file, { cond: new ort.Tensor('bool', Uint8Array.of(cond ? 1 : 0), []) });
  return new Float32Array(out.z.slice().buffer);
}

describe('walking and lookups', () => {
  it('visits the main graph and both branches, and sees reads from inside subgraphs', () => {
    const m = ifModel();
    const visits = [...allGraphs(m)];
    expect(visits.map((v) => [v.graph.name, v.depth, v.parent?.node.name ?? null])).toEqual([['g', 0, null], ['then', 1, 'if'], ['else', 1, 'if']]);
    const g = m.graph!;
    const thenGraph = visits[1].graph;
    expect([...outerReferences(thenGraph)]).toEqual(['W']);
    const consumers = consumerMap(g);
    expect(consumers.get('W')!.map((n) => n.name)).toEqual(['if']);
    expect(consumers.get('two')!.map((n) => n.name)).toEqual(['if']);
    expect(consumers.get('y')!.map((n) => n.name)).toEqual(['id']);
    expect(consumers.has('unused')).toBe(false);
    expect(producerMap(g).get('y')!.name).toBe('if');
    expect(initializerMap(g).get('two')).toBe(findInitializer(g, 'two'));
  });
});

describe('sweepUnusedInitializers', () => {
  it('removes only what nothing reads, keeps outer initializers read by subgraphs, and the model still runs the same', async () => {
    const m = ifModel();
    const before = [await run(m, 'before.onnx', true), await run(m, 'before.onnx', false)];
    const removed = sweepUnusedInitializers(m.graph!);
    expect(removed.sort()).toEqual(['sub_unused', 'unused']);
    expect(m.graph!.initializer.map((t) => t.name)).toEqual(['W', 'two']);
    expect(m.graph!.input.map((v) => v.name)).toEqual(['cond']);      // the input that named a swept initializer is gone
    const after = [await run(m, 'after.onnx', true), await run(m, 'after.onnx', false)];
    expect(after).toEqual(before);
    expect(before).toEqual([Float32Array.of(11, 22), Float32Array.of(2, 4)]);
    expect(sweepUnusedInitializers(m.graph!)).toEqual([]);
  });
});

describe('replaceNode', () => {
  it('splices the new nodes in place of the old one', async () => {
    const m = ifModel();
    const g = m.graph!;
    const id = g.node[1];
    const scope = NameScope.fromModel(m);
    const mid = scope.fresh('y_neg');
    replaceNode(g, id, [makeNode({ opType: 'Neg', inputs: ['y'], outputs: [mid], name: scope.fresh('neg') }), makeNode({ opType: 'Neg', inputs: [mid], outputs: ['z'], name: scope.fresh('neg') })]);
    expect(g.node.map((n) => n.name)).toEqual(['if', 'neg', 'neg_1']);
    expect(await run(m, 'replaced.onnx', true)).toEqual(Float32Array.of(11, 22));
    expect(() => replaceNode(g, id, [])).toThrow(/not in graph/);
  });
});

describe('opsets and names', () => {
  it('ensureOpset adds a domain, raises a lower version and never lowers', () => {
    const m = ifModel();
    expect(ensureOpset(m, 'com.microsoft', 1)).toBe(1);
    expect(opsetVersion(m, 'com.microsoft')).toBe(1);
    expect(ensureOpset(m, '', 21)).toBe(21);
    expect(ensureOpset(m, 'ai.onnx', 13)).toBe(21);
    expect(m.opsetImport).toEqual([{ domain: '', version: 21 }, { domain: 'com.microsoft', version: 1 }]);
  });

  it('NameScope gives predictable derived names that collide with nothing, subgraphs included', () => {
    const s = NameScope.fromModel(ifModel());
    expect(s.fresh('W_Q4')).toBe('W_Q4');
    expect(s.fresh('W_Q4')).toBe('W_Q4_1');
    expect(s.fresh('W')).toBe('W_1');
    expect(s.fresh('then_add')).toBe('then_add_1');
    expect(s.fresh('sub_used')).toBe('sub_used_1');
    expect(s.has('else_out')).toBe(true);
  });

  it('qualifies non-default domains and reads attributes with defaults', () => {
    const n = makeNode({ opType: 'MatMulNBits', domain: 'com.microsoft', inputs: ['a'], outputs: ['b'], attributes: [intAttr('bits', 4), floatAttr('alpha', 0.5), stringAttr('mode', 'sym'), intsAttr('perm', [1, 0])] });
    expect(qualifiedOpType(n)).toBe('com.microsoft.MatMulNBits');
    expect(qualifiedOpType(makeNode({ opType: 'MatMul', inputs: [], outputs: [] }))).toBe('MatMul');
    expect(attrInt(n, 'bits', 8)).toBe(4);
    expect(attrInt(n, 'block_size', 32)).toBe(32);
    expect(attrFloat(n, 'alpha', 1)).toBe(0.5);
    expect(attrString(n, 'mode', '')).toBe('sym');
    expect(attrInts(n, 'perm')).toEqual([1, 0]);
    expect(attrInts(n, 'missing')).toBeUndefined();
  });
});

describe('reading the written If model back', () => {
  it('keeps both branches with their initializers', async () => {
    const file = path.join(tmp.dir, 'if.onnx');
    await writeModel(ifModel(), file, { externalData: 'all' });
    const m = await readModel(file);
    const [, thenV, elseV] = [...allGraphs(m.proto)];
    expect(thenV.graph.initializer.map((t) => t.name)).toEqual(['sub_used', 'sub_unused']);
    expect(thenV.graph.initializer[0].dataLocation).toBe(1);
    expect(elseV.graph.node[0].opType).toBe('Mul');
  });
});
