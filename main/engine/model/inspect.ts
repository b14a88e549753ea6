/**
 * Model inspection: what the "model" page shows and what steps check before they run — size on disk,
 * parameters, bytes per dtype, op histogram, opsets, inputs/outputs, graph kind and decoder facts, and
 * the weights a quantizer could rewrite (with reasons for those it would skip). Reads only the graph;
 * tensor payloads are not loaded.
 */
import { stat } from 'node:fs/promises';
import type { ModelInspection, QuantizableWeight } from '../../../preload/contract.ts';
import { WhittleError } from '../errors.ts';
import { dtypeName } from '../onnx/dtype.ts';
import { allGraphs, allNodes, qualifiedOpType, toNumber } from '../onnx/graph.ts';
import type { OnnxModel } from '../onnx/proto-types.ts';
import { readModel } from '../onnx/reader.ts';
import { mapArchitecture } from '../rewrite/architecture.ts';
import { summarizeArchitecture } from '../rewrite/architecture-summary.ts';
import { eligibleWeights } from '../rewrite/eligibility.ts';
import { tensorByteLength } from '../onnx/tensor-data.ts';
import { detectDecoderLayout, detectGraphKind, unsupportedParts } from './layout.ts';
import { countParameters } from './parameters.ts';
import { graphInputs, graphOutputs } from './tensor-info.ts';
import { findWeightCandidates, toQuantizableWeights } from './weights.ts';

const SUBGRAPH_REASON = 'inside an If/Loop/Scan body; only the main graph is rewritten';

/**
 * The weights a rewrite could touch: the main graph's rows come from the same eligibility decision the
 * rewrite makes (rewrite/eligibility.ts); weights inside subgraphs are listed as not rewritten.
 */
function quantizableWeights(proto: OnnxModel['proto'], map: ReturnType<typeof mapArchitecture>): ModelInspection['quantizable'] {
  const graph = proto.graph!;
  const main = eligibleWeights(graph, map).map((w): QuantizableWeight => {
    const { block, role, skipReason, k, n, ...rest } = w;
    return { ...rest, ...(k !== undefined ? { k, n } : {}), block, role, ...(skipReason ? { skipReason } : {}) };
  });
  const inner = toQuantizableWeights(findWeightCandidates(proto).filter((c) => c.graph !== graph)).map((w) => ({ ...w, skipReason: SUBGRAPH_REASON }));
  return [...main, ...inner];
}

export async function inspectModel(path: string): Promise<ModelInspection> {
  return inspectLoadedModel(await readModel(path));
}

/**
 * Inspection of an already-read model. Bytes count the initializers of every graph; parameters follow
 * the one definition of model/parameters.ts (logical weights, no quantization metadata).
 */
export async function inspectLoadedModel(model: OnnxModel): Promise<ModelInspection> {
  const proto = model.proto;
  const graph = proto.graph;
  if (!graph) throw new WhittleError('MODEL_PARSE', 'The model has no graph.', { path: model.path });

  const { parameters } = countParameters(proto);
  const bytesByDtype: Record<string, number> = {};
  for (const { graph: g } of allGraphs(proto)) {
    for (const t of g.initializer) {
      const dt = dtypeName(t.dataType);
      bytesByDtype[dt] = (bytesByDtype[dt] ?? 0) + tensorByteLength(t);
    }
  }

  const opHistogram: Record<string, number> = {};
  for (const { node } of allNodes(proto)) {
    const op = qualifiedOpType(node);
    opHistogram[op] = (opHistogram[op] ?? 0) + 1;
  }

  let bytesOnDisk = model.fileBytes;
  for (const f of model.externalDataFiles) bytesOnDisk += (await stat(f)).size;

  const kind = detectGraphKind(proto);
  const map = mapArchitecture(proto);
  const inspection: ModelInspection = {
    path: model.path,
    bytesOnDisk,
    irVersion: toNumber(proto.irVersion),
    producer: [proto.producerName, proto.producerVersion].filter((s) => s).join(' '),
    opsets: proto.opsetImport.map((o) => ({ domain: o.domain ?? '', version: toNumber(o.version) })),
    parameters,
    bytesByDtype,
    opHistogram,
    inputs: graphInputs(graph),
    outputs: graphOutputs(graph),
    kind,
    quantizable: quantizableWeights(proto, map),
    externalDataFiles: [...model.externalDataFiles],
    architecture: summarizeArchitecture(map),
  };
  const unsupported = unsupportedParts(proto);
  if (unsupported.length > 0) inspection.unsupported = unsupported;
  if (kind.startsWith('decoder') && kind !== 'decoder-unsupported-cache') {
    const layout = detectDecoderLayout(proto);
    const decoder: NonNullable<ModelInspection['decoder']> = {};
    if (layout.layers !== undefined) decoder.layers = layout.layers;
    if (layout.kvHeads !== undefined) decoder.kvHeads = layout.kvHeads;
    if (layout.headSize !== undefined) decoder.headSize = layout.headSize;
    if (layout.vocabSize !== undefined) decoder.vocabSize = layout.vocabSize;
    inspection.decoder = decoder;
  }
  return inspection;
}
