/**
 * Event handlers that run asynchronous actions. React ignores what a handler returns, so a promise handed
 * to `onClick` would float: a rejection the action did not handle itself would go unnoticed. These wrap
 * the action so that such a rejection is always reported (the actions show their own errors; this is the
 * net under them).
 */

export function reportRejection(e: unknown): void {
  console.error('Whittle: an action failed:', e);
}

/** `onClick={onAsync(save)}`: runs `save` and reports a rejection it left unhandled. */
export function onAsync<A extends unknown[]>(action: (...args: A) => Promise<unknown>): (...args: A) => void {
  return (...args) => {
    action(...args).catch(reportRejection);
  };
}
