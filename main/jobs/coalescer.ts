/**
 * Keeps a fast stream of updates to at most one per interval: the first goes out at once, later ones
 * within the interval replace each other and the latest goes out when the interval ends. Only for
 * updates where the newest supersedes the rest (progress) — never for results, logs or errors.
 * With `sameKind`, a held update is replaced only by one of the same kind (the same phase); one of
 * another kind pushes it out first, so the last update of every phase is seen.
 */
export class Coalescer<T> {
  private readonly intervalMs: number;
  private readonly deliver: (item: T) => void;
  private readonly clock: () => number;
  private readonly sameKind: (a: T, b: T) => boolean;
  private last = Number.NEGATIVE_INFINITY;
  private pending: { item: T } | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(intervalMs: number, deliver: (item: T) => void, options: { clock?: () => number; sameKind?: (a: T, b: T) => boolean } = {}) {
    this.intervalMs = intervalMs;
    this.deliver = deliver;
    this.clock = options.clock ?? (() => performance.now());
    this.sameKind = options.sameKind ?? (() => true);
  }

  push(item: T): void {
    const now = this.clock();
    if (!this.timer && now - this.last >= this.intervalMs) {
      this.last = now;
      this.deliver(item);
      return;
    }
    if (this.pending && !this.sameKind(this.pending.item, item)) {
      this.last = now;
      this.deliver(this.pending.item);
    }
    this.pending = { item };
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, Math.max(0, this.intervalMs - (now - this.last)));
    }
  }

  /** Delivers the held update now, if any. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const p = this.pending;
    this.pending = null;
    if (p) {
      this.last = this.clock();
      this.deliver(p.item);
    }
  }

  /** Drops the held update. */
  discard(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending = null;
  }
}
