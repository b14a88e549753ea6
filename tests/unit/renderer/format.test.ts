import { describe, expect, it } from 'vitest';
import {
  baseName, formatBytes, formatCount, formatDecimal, formatDuration, formatEta, formatInteger, formatShape, progressPercent,
} from '../../../renderer/lib/format.ts';

describe('renderer formatting', () => {
  it('prints sizes in binary units, as the CLI does, with sensible digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1_096_412)).toBe('1.05 MiB');
    expect(formatBytes(12_345_678)).toBe('11.8 MiB');
    expect(formatBytes(123_456_789_012)).toBe('115 GiB');
    expect(formatBytes(null)).toBe('—');
  });

  it('prints counts and decimals', () => {
    expect(formatInteger(38675)).toBe('38,675');
    expect(formatCount(260_032)).toBe('260K');
    expect(formatCount(1_100_000_000)).toBe('1.1B');
    expect(formatCount(999)).toBe('999');
    expect(formatDecimal(4.226731, 4)).toBe('4.2267');
    expect(formatDecimal(51234.7)).toBe('51,234.7');
    expect(formatDecimal(Number.NaN)).toBe('—');
  });

  it('prints durations and ETAs', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(12_345)).toBe('12.3 s');
    expect(formatDuration(125_000)).toBe('2 min 5 s');
    expect(formatDuration(3_720_000)).toBe('1 h 2 min');
    expect(formatEta(null)).toBe('estimating…');
    expect(formatEta(4.2)).toBe('5 s left');
    expect(formatEta(125)).toBe('2 min 5 s left');
  });

  it('computes a clamped percentage, or none without a total', () => {
    expect(progressPercent(40, 400)).toBe(10);
    expect(progressPercent(500, 400)).toBe(100);
    expect(progressPercent(3, 0)).toBeNull();
  });

  it('prints shapes and file names', () => {
    expect(formatShape(['batch', 4, null, 8])).toBe('[batch, 4, ?, 8]');
    expect(baseName('/a/b/model.onnx')).toBe('model.onnx');
    expect(baseName('C:\\models\\m.onnx')).toBe('m.onnx');
  });
});
