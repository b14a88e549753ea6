import { afterEach, describe, expect, it, vi } from 'vitest';
import { Coalescer } from '../../../main/jobs/coalescer.ts';
import { EtaEstimator } from '../../../main/jobs/eta.ts';

describe('EtaEstimator', () => {
  it('estimates from the rate observed since the phase began', () => {
    const eta = new EtaEstimator();
    expect(eta.update('evaluate', 0, 100, 1000)).toBeNull();     // phase starts: nothing observed yet
    expect(eta.update('evaluate', 10, 100, 3000)).toBe(18);      // 10 per 2 s → 90 left = 18 s
    expect(eta.update('evaluate', 50, 100, 6000)).toBe(5);       // 50 in 5 s → 50 left = 5 s
    expect(eta.update('evaluate', 100, 100, 7000)).toBe(0);
  });

  it('starts over in a new phase and when progress goes backwards', () => {
    const eta = new EtaEstimator();
    eta.update('load', 0, 1, 0);
    expect(eta.update('load', 1, 1, 100)).toBe(0);
    expect(eta.update('quantize', 5, 20, 200)).toBeNull();       // the new phase's rate is unknown
    expect(eta.update('quantize', 10, 20, 1200)).toBe(2);        // 5 in 1 s → 10 left = 2 s
    expect(eta.update('quantize', 2, 20, 1300)).toBeNull();      // restarted
    expect(eta.update('quantize', 4, 20, 2300)).toBe(8);
  });

  it('gives no estimate without a total or without advancing', () => {
    const eta = new EtaEstimator();
    eta.update('x', 3, 0, 0);
    expect(eta.update('x', 5, 0, 1000)).toBeNull();
    const still = new EtaEstimator();
    still.update('y', 3, 10, 0);
    expect(still.update('y', 3, 10, 5000)).toBeNull();
  });
});

describe('Coalescer', () => {
  afterEach(() => vi.useRealTimers());

  it('passes the first update at once, then at most one per interval with the newest value', () => {
    vi.useFakeTimers();
    const out: number[] = [];
    const c = new Coalescer<number>(100, (v) => out.push(v), { clock: () => Date.now() });
    c.push(1);
    expect(out).toEqual([1]);
    c.push(2);
    c.push(3);
    c.push(4);
    expect(out).toEqual([1]);
    vi.advanceTimersByTime(99);
    expect(out).toEqual([1]);
    vi.advanceTimersByTime(1);
    expect(out).toEqual([1, 4]);
    vi.advanceTimersByTime(1000);
    expect(out).toEqual([1, 4]);
    c.push(5);                                  // a quiet interval has passed: straight through
    expect(out).toEqual([1, 4, 5]);
  });

  it('delivers 10 updates per second at most from a flood of 1000', () => {
    vi.useFakeTimers();
    const out: number[] = [];
    const c = new Coalescer<number>(100, (v) => out.push(v), { clock: () => Date.now() });
    for (let i = 1; i <= 1000; i++) {
      c.push(i);
      vi.advanceTimersByTime(1);
    }
    c.flush();
    expect(out.length).toBeLessThanOrEqual(11);
    expect(out.at(-1)).toBe(1000);
    for (let i = 1; i < out.length; i++) expect(out[i]).toBeGreaterThan(out[i - 1]);
  });

  it('with sameKind, keeps the last update of each kind', () => {
    vi.useFakeTimers();
    const out: string[] = [];
    const c = new Coalescer<string>(100, (v) => out.push(v), { clock: () => Date.now(), sameKind: (a, b) => a[0] === b[0] });
    c.push('a1');
    c.push('a2');
    c.push('a3');
    c.push('b1');                               // pushes a3 out at once; b1 is held
    c.push('b2');
    expect(out).toEqual(['a1', 'a3']);
    vi.advanceTimersByTime(100);
    expect(out).toEqual(['a1', 'a3', 'b2']);
  });

  it('flush delivers the held update now; discard drops it', () => {
    vi.useFakeTimers();
    const out: string[] = [];
    const c = new Coalescer<string>(100, (v) => out.push(v), { clock: () => Date.now() });
    c.push('a');
    c.push('b');
    c.flush();
    expect(out).toEqual(['a', 'b']);
    c.flush();
    expect(out).toEqual(['a', 'b']);
    c.push('c');
    c.discard();
    vi.advanceTimersByTime(500);
    expect(out).toEqual(['a', 'b']);
  });
});
