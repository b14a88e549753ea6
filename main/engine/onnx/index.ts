/** Whittle's ONNX layer: read, inspect the structure of, rewrite and write ONNX models. */
export type * from './proto-types.ts';
export { AttributeType } from './proto-types.ts';
export { byteSize, DataType, dtypeBits, dtypeId, dtypeInfo, dtypeName, isFloatDtype, type DType } from './dtype.ts';
export { decodeModelBytes, decodeTensorBytes, DEFAULT_INLINE_BELOW, readModel, readTensorFile, type ReadOptions } from './reader.ts';
export { EXTERNAL_ALIGNMENT, isShapeLike, PROTOBUF_LIMIT, writeModel, type WriteOptions, type WriteResult } from './writer.ts';
export {
  bfloat16ToFloat, bytesToFloat32, copyPayload, COPY_CHUNK_BYTES, elementCount, floatToHalf, halfToFloat, makeTensor, readTensorBytes,
  readTensorFloat32, tensorByteLength,
} from './tensor-data.ts';
export {
  allGraphs, allNodes, allTensors, attrFloat, attrInt, attrInts, attrString, consumerMap, ensureOpset,
  findInitializer, floatAttr, floatsAttr, getAttribute, initializerMap, intAttr, intsAttr, makeNode, NameScope,
  nodeReads, opsetVersion, outerReferences, producerMap, qualifiedOpType, replaceNode, stringAttr, subgraphsOf,
  sweepUnusedInitializers, tensorAttr, toNumber, type GraphVisit, type NodeSpec,
} from './graph.ts';
export { recogniseFile } from './sniff.ts';
