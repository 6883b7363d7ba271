// RuntimeTenants over its store (src/tenant-store.ts): a change is decided on the store's
// text as the store hands it to the change (another node may have changed it), and a
// store that cannot be reached is a 503 that says why.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ServerSpec } from '../../src/bridge.js';
import type { NativeBridge } from '../../src/native.js';
import { parseConfiguration } from '../../src/configuration.js';
import { Orthanc } from '../../src/orthanc.js';
import { RuntimeTenants, type TenantsListener } from '../../src/runtime-tenants.js';
import { TenantStoreError, type TenantStore } from '../../src/tenant-store.js';
import { Tenants } from '../../src/tenants.js';
import { refusingBridge } from '../support/fake-context.js';
import { FakeOrthanc } from '../support/fake-orthanc.js';

/** A store in memory, as PostgreSQL would hold it; `failure` makes every access fail. */
class MemoryStore implements TenantStore {
  readonly where = 'memory';
  failure: Error | undefined;
  reads = 0;
  constructor(public text = '') {}
  async read(): Promise<string> {
    this.reads++;
    if (this.failure) throw this.failure;
    return this.text;
  }
  async update(change: (text: string) => string): Promise<string> {
    if (this.failure) throw this.failure;
    this.text = change(this.text);
    return this.text;
  }
}

/** Orthanc (the fake) whose GET /system says which index it has (DatabaseBackendPlugin: null for its built-in SQLite one). */
function orthancOverIndex(databaseBackendPlugin: string | null) {
  const fake = new FakeOrthanc();
  fake.databaseBackendPlugin = databaseBackendPlugin;
  return () => fake.bridge;
}

function setUp(store: TenantStore, makeBridge: (log: (line: string) => void) => NativeBridge = refusingBridge) {
  const logs: string[] = [];
  const applied: ServerSpec[][] = [];
  const changes: string[] = [];
  const bridge = makeBridge((line) => logs.push(line));
  const tenants = new Tenants();
  tenants.configure(parseConfiguration({ MultitenantDicom: { Servers: [{ AET: 'CONFIGURED', Port: 4243, Labels: ['c'] }] } }));
  const native = {
    applyServers: async (specs: ServerSpec[]) => {
      applied.push(specs);
      return specs.map((spec) => ({ index: spec.index, state: 'Listening' as const }));
    },
    getConfigurationPath: () => '/etc/orthanc/orthanc.json',
  };
  const listener: TenantsListener = { serve: () => {}, tenantChanged: (tenant, change) => changes.push(`${change} ${tenant.aet}`) };
  const specsOf = (all: { index: number; aet: string; port: number }[]) => all.map((tenant) => ({ index: tenant.index, aet: tenant.aet, port: tenant.port }) as ServerSpec);
  const runtime = new RuntimeTenants(tenants, native, Orthanc.connect(bridge), specsOf, listener, store);
  return { runtime, logs, applied, changes };
}

describe('RuntimeTenants over its store', () => {
  it('a PUT writes the entry through the store, applies the servers and reports the creation', async () => {
    const store = new MemoryStore();
    const { runtime, applied, changes } = setUp(store);
    const outcome = await runtime.put('HOSP_C', JSON.stringify({ Port: 4343, Labels: ['hosp_c'] }));
    expect(outcome).toMatchObject({ status: 201, body: { AET: 'HOSP_C', Port: 4343, State: 'Listening' } });
    expect(JSON.parse(store.text)).toEqual({ Servers: [{ AET: 'HOSP_C', Port: 4343, Labels: ['hosp_c'] }] });
    expect(applied.at(-1)?.map((spec) => spec.aet)).toEqual(['CONFIGURED', 'HOSP_C']);
    expect(changes).toEqual(['TENANT-CREATED HOSP_C']);
  });

  it("decides on the store's text as it is now: a port another node just gave to a tenant is a conflict, and nothing is written", async () => {
    const store = new MemoryStore();
    const { runtime, changes } = setUp(store);
    await runtime.load();
    const byAnotherNode = JSON.stringify({ Servers: [{ AET: 'HOSP_X', Port: 4400, Labels: ['x'] }] });
    store.text = byAnotherNode;
    const outcome = await runtime.put('HOSP_Y', JSON.stringify({ Port: 4400, Labels: ['y'] }));
    expect(outcome.status).toBe(409);
    expect((outcome.body as { error: string }).error).toContain('HOSP_X');
    expect(store.text).toBe(byAnotherNode);
    expect(changes).toEqual([]);
  });

  it('a DELETE of a tenant another node just added removes it from the store', async () => {
    const store = new MemoryStore();
    const { runtime, changes } = setUp(store);
    await runtime.load();
    store.text = JSON.stringify({ Servers: [{ AET: 'HOSP_X', Port: 4400, Labels: ['x'] }, { AET: 'HOSP_Z', Port: 4401, Labels: ['z'] }] });
    expect(await runtime.delete('HOSP_X')).toEqual({ status: 200, body: { Deleted: 'HOSP_X' } });
    expect(JSON.parse(store.text)).toEqual({ Servers: [{ AET: 'HOSP_Z', Port: 4401, Labels: ['z'] }] });
    expect(changes).toEqual(['TENANT-DELETED HOSP_X']);
    expect((await runtime.delete('HOSP_X')).status).toBe(404);
  });

  it('a store that cannot be reached: 503 with its one-line message, logged as an error; nothing applied', async () => {
    const store = new MemoryStore();
    const { runtime, logs, applied, changes } = setUp(store);
    const message = 'cannot reach PostgreSQL at db:5432 database orthanc (Orthanc\'s "PostgreSQL" section) for the tenants added through REST: connect ECONNREFUSED';
    store.failure = new TenantStoreError(message);
    expect(await runtime.put('HOSP_C', JSON.stringify({ Port: 4343, Labels: ['c2'] }))).toEqual({ status: 503, body: { error: message } });
    expect(await runtime.delete('HOSP_C')).toEqual({ status: 503, body: { error: message } });
    expect(logs).toEqual([`error: multitenant-dicom: ${message}`, `error: multitenant-dicom: ${message}`]);
    expect(applied).toEqual([]);
    expect(changes).toEqual([]);
  });
});

describe('RuntimeTenants following the changes of other nodes', () => {
  afterEach(() => vi.useRealTimers());

  async function readsWithin(runtime: RuntimeTenants, store: MemoryStore, milliseconds: number): Promise<number> {
    vi.useFakeTimers();
    await runtime.follow();
    const before = store.reads;
    await vi.advanceTimersByTimeAsync(milliseconds);
    runtime.stop();
    return store.reads - before;
  }

  it("on a database plugin's index (shared by a cluster's nodes), reads the store every few seconds and applies another node's change", async () => {
    const store = new MemoryStore();
    const { runtime, applied } = setUp(store, orthancOverIndex('/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so'));
    await runtime.load();
    store.text = JSON.stringify({ Servers: [{ AET: 'HOSP_X', Port: 4400, Labels: ['x'] }] });
    expect(await readsWithin(runtime, store, 10_000)).toBeGreaterThanOrEqual(3);
    expect(applied.at(-1)?.map((spec) => spec.aet)).toEqual(['CONFIGURED', 'HOSP_X']);
  });

  it("on Orthanc's built-in SQLite index, which no other node opens, never reads the store again", async () => {
    const store = new MemoryStore();
    const { runtime, applied } = setUp(store, orthancOverIndex(null));
    await runtime.load();
    expect(await readsWithin(runtime, store, 10_000)).toBe(0);
    expect(applied).toEqual([]);
  });
});
