// Waiting for a condition by polling it: tests never sleep a fixed time, so that they hold
// on a loaded machine and take no longer than they must on an idle one.
import { setTimeout as sleep } from 'node:timers/promises';
import { canConnect } from './orthanc.js';

export interface WaitOptions {
  /** How long to poll before failing; a minute by default. */
  timeoutMs?: number;
  /** The pause between two polls; 100 ms by default. */
  intervalMs?: number;
  /** Where the time is measured from (a `performance.now()`); the call itself by default. */
  since?: number;
}

/** Polls `condition` until it holds; resolves with the time since `since` (ms), fails naming `what` after the timeout. */
export async function waitUntil(what: string, condition: () => Promise<boolean>, options: WaitOptions = {}): Promise<number> {
  const { timeoutMs = 60_000, intervalMs = 100, since = performance.now() } = options;
  for (;;) {
    if (await condition()) return performance.now() - since;
    if (performance.now() - since > timeoutMs) throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(0)} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Polls until a TCP port accepts connections (`open`) or refuses them; resolves with the time since `options.since` (ms). */
export function waitForPort(port: number, open: boolean, options: WaitOptions & { host?: string } = {}): Promise<number> {
  const host = options.host ?? '127.0.0.1';
  return waitUntil(`port ${port} at ${host} to ${open ? 'open' : 'close'}`, async () => (await canConnect(port, host)) === open, {
    intervalMs: 50,
    ...options,
  });
}
