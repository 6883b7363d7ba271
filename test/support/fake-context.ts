// A HandlerContext (src/handler.ts) for unit tests of the handlers: the tenants given,
// an Orthanc over a given bridge (by default one that refuses every REST call), its log
// recorded, and a Mixing that records what it is told.
import { Activity } from '../../src/activity.js';
import { parseConfiguration, type TenantConfig } from '../../src/configuration.js';
import { parseFaults } from '../../src/faults.js';
import type { HandlerContext } from '../../src/handler.js';
import type { Mixing } from '../../src/mixing.js';
import type { NativeBridge } from '../../src/native.js';
import { Orthanc } from '../../src/orthanc.js';
import { serverSpecs } from '../../src/lifecycle.js';
import { RuntimeTenants } from '../../src/runtime-tenants.js';
import { GlobalPropertyStore } from '../../src/tenant-store.js';
import { Tenants } from '../../src/tenants.js';

export interface FakeContext extends HandlerContext {
  logs: string[];
  noticedPatients: string[];
}

export function refusingBridge(log: (line: string) => void): NativeBridge {
  const refuse = async (uri: string): Promise<never> => {
    throw Object.assign(new Error(`unexpected REST call ${uri}`), { orthancCode: 17 });
  };
  return {
    restGet: refuse,
    restPost: refuse,
    restPut: refuse,
    restDelete: refuse,
    getConfiguration: () => '{}',
    applyServers: async () => [],
    getGlobalProperty: async () => '',
    setGlobalProperty: async () => {},
    getConfigurationPath: () => null,
    log: (level, message) => log(`${level}: ${message}`),
    storeActivity: () => ({ inProgress: false, lastBegun: 0, now: 0 }),
    setDispatcher: () => {},
  };
}

export function contextFor(servers: TenantConfig[], makeBridge: (log: (line: string) => void) => NativeBridge = refusingBridge): FakeContext {
  const logs: string[] = [];
  const noticedPatients: string[] = [];
  const tenants = new Tenants();
  tenants.configure({ ...parseConfiguration({}), servers, sectionPresent: true });
  const mixing = {
    noticePatient: (id: string) => noticedPatients.push(id),
    noticeShared: (ids: Iterable<string>) => noticedPatients.push(...ids),
    markedAmong: async () => new Set<string>(),
  } as unknown as Mixing;
  const bridge = makeBridge((line) => logs.push(line));
  const orthanc = Orthanc.connect(bridge);
  const faults = parseFaults(undefined);
  const activity = new Activity();
  return {
    orthanc,
    tenants,
    mixing,
    faults,
    activity,
    runtimeTenants: new RuntimeTenants(tenants, bridge, orthanc, (all) => serverSpecs(all, tenants.dicom, faults.labelWrite), activity, new GlobalPropertyStore(bridge)),
    logs,
    noticedPatients,
  };
}
