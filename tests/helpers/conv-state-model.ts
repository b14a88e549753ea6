/**
 * The sample decoder with one more state input that is not a key/value cache, as hybrid models carry:
 * past_conv.0 [batch_size, 64, 3] (a convolution state) → Concat with itself on the kernel axis → Slice
 * of the last 3 → present_conv.0. onnxruntime loads and runs it; nothing can tell Whittle how to fill it.
 */
import path from 'node:path';
import { DataType } from '../../main/engine/onnx/dtype.ts';
import { intAttr } from '../../main/engine/onnx/graph.ts';
import { readModel } from '../../main/engine/onnx/reader.ts';
import { makeTensor } from '../../main/engine/onnx/tensor-data.ts';
import { writeModel } from '../../main/engine/onnx/writer.ts';
import { nodeOf, valueInfo } from '../unit/onnx/helpers.ts';
import { STORIES } from './fixtures.ts';

export const CONV_STATE_SHAPE = ['batch_size', 64, 3] as const;

/** Writes `<dir>/conv-state.onnx` and returns its path. */
export async function writeConvStateModel(dir: string): Promise<string> {
  const model = await readModel(STORIES.model);
  const graph = model.proto.graph!;
  const concat = nodeOf('Concat', ['past_conv.0', 'past_conv.0'], ['conv_joined'], 'conv_state_concat');
  concat.attribute.push(intAttr('axis', 2));
  const slice = nodeOf('Slice', ['conv_joined', 'conv_starts', 'conv_ends', 'conv_axes'], ['present_conv.0'], 'conv_state_slice');
  graph.node.push(concat, slice);
  const i64 = (name: string, v: bigint) => makeTensor(name, DataType.int64, [1], BigInt64Array.of(v));
  graph.initializer.push(i64('conv_starts', -3n), i64('conv_ends', 2n ** 62n), i64('conv_axes', 2n));
  graph.input.push(valueInfo('past_conv.0', DataType.float32, [...CONV_STATE_SHAPE]));
  graph.output.push(valueInfo('present_conv.0', DataType.float32, [...CONV_STATE_SHAPE]));
  const file = path.join(dir, 'conv-state.onnx');
  await writeModel(model, file);
  return file;
}
