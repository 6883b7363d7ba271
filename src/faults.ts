// MTD_FAULT_INJECTION (integration tests only): a comma-separated list of faults that
// prove the plugin survives failures of its JavaScript side and of Orthanc.
//   KIND[@AET]            the handler of KIND (a message kind of bridge.ts) throws, for
//                         every tenant or for the tenant with this AET only
//   hang:KIND[@AET]       the handler never answers (its promise stays pending)
//   block:KIND[@AET]:MS   the handler blocks the JavaScript thread for MS ms
//   labelWrite:N          the N-th label write of every store (1 = the deepest) is a
//   labelWrite:last       label that Orthanc refuses: a real failure half-way
//   uncaughtException     thrown once, right after initialisation
//   processExit           process.exit(3), once, right after initialisation
//   stdio                 console.log, console.error and a process warning, once, right
//                         after initialisation (they must reach Orthanc's log, src/stdio.ts)
import type { Kind } from './bridge.js';

export interface Faults {
  /** What the handler of `kind` does for the tenant `aet` instead of answering. */
  handlerFault(kind: Kind, aet: string | undefined): HandlerFault | undefined;
  /** Which label write of a store fails (1-based), if any; 'last' for the last one. */
  readonly labelWrite: number | 'last' | undefined;
  readonly processFaults: ReadonlySet<ProcessFault>;
}

type ProcessFault = 'uncaughtException' | 'processExit' | 'stdio';
const PROCESS_FAULTS: readonly string[] = ['uncaughtException', 'processExit', 'stdio'] satisfies ProcessFault[];

export type HandlerFault = { type: 'throw' } | { type: 'hang' } | { type: 'block'; milliseconds: number };

interface HandlerRule {
  fault: HandlerFault;
  kind: string;
  aet: string | undefined;
}

export function parseFaults(value: string | undefined): Faults {
  const rules: HandlerRule[] = [];
  let labelWrite: number | 'last' | undefined;
  const processFaults = new Set<ProcessFault>();
  for (const item of (value ?? '').split(',').map((part) => part.trim()).filter((part) => part !== '')) {
    if (PROCESS_FAULTS.includes(item)) {
      processFaults.add(item as ProcessFault);
    } else if (item.startsWith('labelWrite:')) {
      const position = item.slice('labelWrite:'.length);
      labelWrite = position === 'last' ? 'last' : positiveInteger(position, item);
    } else if (item.startsWith('hang:')) {
      rules.push({ fault: { type: 'hang' }, ...target(item.slice('hang:'.length)) });
    } else if (item.startsWith('block:')) {
      const rest = item.slice('block:'.length);
      const colon = rest.lastIndexOf(':');
      if (colon < 0) throw new Error(`MTD_FAULT_INJECTION: "${item}" needs a duration, e.g. block:find:5000`);
      rules.push({ fault: { type: 'block', milliseconds: positiveInteger(rest.slice(colon + 1), item) }, ...target(rest.slice(0, colon)) });
    } else {
      rules.push({ fault: { type: 'throw' }, ...target(item) });
    }
  }
  return {
    handlerFault: (kind, aet) => rules.find((rule) => rule.kind === kind && (rule.aet === undefined || rule.aet === aet))?.fault,
    labelWrite,
    processFaults,
  };
}

function target(text: string): { kind: string; aet: string | undefined } {
  const at = text.indexOf('@');
  return at < 0 ? { kind: text, aet: undefined } : { kind: text.slice(0, at), aet: text.slice(at + 1) };
}

function positiveInteger(text: string, item: string): number {
  const number = Number(text);
  if (!Number.isInteger(number) || number < 1) throw new Error(`MTD_FAULT_INJECTION: "${item}" needs a positive integer`);
  return number;
}

/** Runs a handler fault: throws, never settles, or holds the JavaScript thread. */
export function runHandlerFault(fault: HandlerFault, kind: string): Promise<never> {
  switch (fault.type) {
    case 'throw':
      throw new Error(`fault injected into "${kind}" (MTD_FAULT_INJECTION)`);
    case 'hang':
      return new Promise<never>(() => undefined);
    case 'block': {
      const until = Date.now() + fault.milliseconds;
      while (Date.now() < until) {
        // The whole JavaScript side is stuck: what the native watchdog must notice.
      }
      throw new Error(`fault injected: "${kind}" blocked the JavaScript thread for ${fault.milliseconds} ms (MTD_FAULT_INJECTION)`);
    }
  }
}

export function scheduleProcessFaults(faults: Faults, warn: (message: string) => void): void {
  if (faults.processFaults.has('uncaughtException')) {
    setTimeout(() => {
      throw new Error('fault injected: uncaught exception (MTD_FAULT_INJECTION)');
    }, 10);
  }
  if (faults.processFaults.has('processExit')) {
    setTimeout(() => {
      warn('fault injected: process.exit(3) (MTD_FAULT_INJECTION)');
      process.exit(3);
    }, 10);
  }
  if (faults.processFaults.has('stdio')) {
    setTimeout(() => {
      console.log('fault injected: console.log (MTD_FAULT_INJECTION)');
      console.error('fault injected: console.error (MTD_FAULT_INJECTION)');
      process.emitWarning('fault injected: a process warning (MTD_FAULT_INJECTION)');
    }, 10);
  }
}
