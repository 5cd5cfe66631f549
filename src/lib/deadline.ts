// One time budget for a whole CNI invocation (ipam.timeoutSeconds). A request makes several store and API
// calls, each with its own timeout; the budget caps them all, so that a store that accepts connections and
// never answers cannot hold a pod's start for longer. The budget travels with the request's async context
// rather than through every Store method: the agent's stores are shared by requests with their own budgets.
import { AsyncLocalStorage } from "node:async_hooks";

const current = new AsyncLocalStorage<number>();

/** Runs `fn` with every call under it bounded by `deadline` (epoch milliseconds). */
export function withDeadline<T>(deadline: number, fn: () => Promise<T>): Promise<T> {
  return current.run(deadline, fn);
}

/** Milliseconds left of the current budget, at most `cap`; `cap` when no budget is set. */
export function budgetLeft(cap: number): number {
  const deadline = current.getStore();
  return deadline === undefined ? cap : Math.min(cap, deadline - Date.now());
}

/**
 * Runs `fn` outside any budget: for work a request starts that outlives it (the agent's pod cache and views of
 * what is held), which would otherwise inherit the request's deadline and fail at once once it has passed.
 */
export function outsideAnyDeadline<T>(fn: () => T): T {
  return current.exit(fn);
}
