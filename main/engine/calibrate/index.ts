/** Calibration: sampling the user's text, capturing activations, streaming statistics, range methods. */
export { ACCUMULATOR_KINDS, hessianKernel, TensorAccumulator, type AccumulatorKind, type TensorStats } from './accumulators.ts';
export {
  activationInputsFor, addCaptureOutputs, writeCaptureModel, type ActivationDtype, type ActivationInput, type CaptureModelFiles,
  type CaptureTarget,
} from './capture-plan.ts';
export { collectCalibrationStats, DEFAULT_HISTOGRAM_BINS, type CalibrationRequest } from './collect.ts';
export { SymmetricHistogram, type HistogramSnapshot } from './histogram.ts';
export { mulberry32, type Prng } from './prng.ts';
export { entropyThreshold, percentileOfAbs, rangeFromStats, type RangeMethod, type RangeOptions, type RangeStats } from './ranges.ts';
export { calibrationRegion, checkCalibrationCapacity, estimateTokens, sampleCalibration, type SampleOptions, type TokenEstimate } from './sampling.ts';
export { validateCalibration, type PreparedCalibration, type ValidateCalibrationInput } from './validate.ts';
