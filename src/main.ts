// Entry point of the bundle that the plugin embeds (build/bundle.js). It runs in
// Orthanc's process, in the Node environment started by native/node_host.cpp.
import type { NativeBridge } from './native.js';
import { Orthanc } from './orthanc.js';
import { createDispatcher } from './tenants.js';

const bridge = (process as unknown as { _linkedBinding(name: string): NativeBridge })._linkedBinding(
  'multitenant_dicom',
);
const orthanc = new Orthanc(bridge);

// Nothing in JS may end Orthanc: report, and keep serving.
process.on('uncaughtException', (error) => {
  orthanc.error(`multitenant-dicom: uncaught JavaScript error: ${describe(error)}`);
});
process.on('unhandledRejection', (reason) => {
  orthanc.error(`multitenant-dicom: unhandled JavaScript rejection: ${describe(reason)}`);
});
process.exit = ((code?: number) => {
  orthanc.error(`multitenant-dicom: JavaScript called process.exit(${code ?? ''}); ignored`);
}) as typeof process.exit;

bridge.setDispatcher(createDispatcher(orthanc));

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
