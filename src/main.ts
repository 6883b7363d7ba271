// Entry point of the bundle that the plugin embeds (build/bundle.js). It runs in
// Orthanc's process, in the Node environment started by native/node_host.cpp.
import { sendStdioTo } from './stdio.js'; // first: before any module can open fd 1 or 2
import { Activity } from './activity.js';
import { createDispatcher } from './dispatcher.js';
import { parseFaults } from './faults.js';
import { Mixing } from './mixing.js';
import type { NativeBridge } from './native.js';
import { describeError, Orthanc } from './orthanc.js';
import { serverSpecs } from './lifecycle.js';
import { RuntimeTenants } from './runtime-tenants.js';
import { openTenantStore } from './tenant-store.js';
import { Tenants } from './tenants.js';

const bridge = (process as unknown as { _linkedBinding(name: string): NativeBridge })._linkedBinding(
  'multitenant_dicom',
);
const orthanc = Orthanc.connect(bridge);
sendStdioTo((stream, text) => (stream === 'stderr' ? orthanc.warning(text) : orthanc.info(text)));

// Nothing in JS may end Orthanc: report, and keep serving.
process.on('uncaughtException', (error) => {
  orthanc.error(`multitenant-dicom: uncaught JavaScript error: ${describeWithStack(error)}`);
});
process.on('unhandledRejection', (reason) => {
  orthanc.error(`multitenant-dicom: unhandled JavaScript rejection: ${describeWithStack(reason)}`);
});
process.exit = ((code?: number) => {
  orthanc.error(`multitenant-dicom: JavaScript called process.exit(${code ?? ''}); ignored`);
}) as typeof process.exit;

const tenants = new Tenants();
const activity = new Activity();
const faults = parseFaults(process.env['MTD_FAULT_INJECTION']);
bridge.setDispatcher(
  createDispatcher({
    orthanc,
    tenants,
    mixing: new Mixing(
      orthanc,
      { info: (message) => orthanc.info(message), error: (message) => orthanc.error(message) },
      (patientId) => bridge.storeActivity(patientId),
    ),
    faults,
    activity,
    runtimeTenants: new RuntimeTenants(
      tenants,
      bridge,
      orthanc,
      (all) => serverSpecs(all, tenants.dicom, faults.labelWrite),
      activity,
      openTenantStore(orthanc.configuration(), bridge, orthanc),
    ),
  }),
);

function describeWithStack(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : describeError(error);
}
