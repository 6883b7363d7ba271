// The operator's view of the tenants (issue 10): what happened on each tenant's server,
// as the native shim reports it (ServerEvent). Being written: it will keep each
// tenant's state and counters, feed the metrics and the audit trail.
import type { ServerEvent } from './bridge.js';
import type { Handler } from './handler.js';

export class Activity {
  record(_events: ServerEvent[]): void {}
}

export const events: Handler<'events'> = (args, { activity }) => {
  activity.record(args.events);
  return undefined;
};
