// What every handler of a bridge message (bridge.ts) is given, and returns.
import type { Activity } from './activity.js';
import type { Answers, Kind, Requests } from './bridge.js';
import type { Faults } from './faults.js';
import type { Mixing } from './mixing.js';
import type { Orthanc } from './orthanc.js';
import type { RuntimeTenants } from './runtime-tenants.js';
import type { Tenants } from './tenants.js';

export interface HandlerContext {
  /** Process-wide; a DICOM request works through orthanc.within(its deadline). */
  orthanc: Orthanc;
  tenants: Tenants;
  mixing: Mixing;
  faults: Faults;
  /** Each tenant's state, counters, metrics and audit trail. */
  activity: Activity;
  /** The tenants added through REST, and the servers' states. */
  runtimeTenants: RuntimeTenants;
}

export type Handler<K extends Kind> = (args: Requests[K], context: HandlerContext) => Answers[K] | Promise<Answers[K]>;

export type Handlers = { [K in Kind]: Handler<K> };
