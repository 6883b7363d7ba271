// Tenants added, changed and removed at run time through REST (src/runtime-tenants.ts):
// PUT and DELETE /plugins/multitenant-dicom/tenants/{AET}, with the configuration's
// validation and messages, kept in Orthanc's database across a restart; tenants of the
// configuration file cannot be changed there.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orthancIds, writeInstance, type SyntheticInstance } from '../support/dataset.js';
import { runTool, type DcmtkResult } from '../support/dcmtk.js';
import { auditOf, metricsOf, metricValue, tenantOf, tenantsOf, waitForAudit } from '../support/operating.js';
import { freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { literal, PLUGIN_PATH } from '../support/plugin.js';
import { waitForPort } from '../support/wait.js';

const CALLING = 'RUNTIME_TEST';
const ROUTE = '/plugins/multitenant-dicom/tenants';

let work: string;
let storage: string;
let orthanc: RunningOrthanc;
let configuration: Record<string, unknown>;
let configuredPort: number;

const echo = (aet: string, port: number): Promise<DcmtkResult> => runTool('echoscu', ['-aet', CALLING, '-aec', aet, '127.0.0.1', String(port)], 30_000);
const store = (aet: string, port: number, path: string): Promise<DcmtkResult> =>
  runTool('storescu', ['-aet', CALLING, '-aec', aet, '127.0.0.1', String(port), path], 30_000);

async function start(): Promise<RunningOrthanc> {
  return startOrthanc({ configuration, plugins: [PLUGIN_PATH], waitForPorts: [configuredPort] });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'runtime-tenants-test-'));
  storage = join(work, 'storage');
  configuredPort = await freePort();
  configuration = {
    HttpPort: await freePort(),
    DicomPort: await freePort(),
    StorageDirectory: storage,
    IndexDirectory: storage,
    DicomModalities: { tester: { AET: CALLING, Host: '127.0.0.1', Port: 104 } },
    MultitenantDicom: {
      Servers: [{ AET: 'CONFIGURED', Port: configuredPort, Labels: ['configured'] }],
      AuditLog: { Path: join(work, 'audit.jsonl') },
    },
  };
  orthanc = await start();
}, 120_000);

afterAll(async () => {
  await stopAllOrthancs();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('PUT /plugins/multitenant-dicom/tenants/{AET}', () => {
  let port: number;
  let instance: SyntheticInstance;

  beforeAll(async () => {
    port = await freePort();
    instance = await writeInstance(join(work, 'data'), { patientId: 'RT-C', patientName: 'Laufzeit^Zoë', sopInstanceUid: '1.2.826.0.1.3680043.10.1234.8181.1' });
  });

  it('creates the tenant (201) and opens its port; what it stores carries its labels', async () => {
    const since = orthanc.log().length;
    const created = await orthanc.rest<Record<string, unknown>>('PUT', `${ROUTE}/HOSP_C`, { Port: port, Labels: ['hosp_c'] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ AET: 'HOSP_C', Port: port, Labels: ['hosp_c'], LabelsConstraint: 'All', State: 'Listening' });
    await orthanc.waitForLog(literal('MultitenantDicom tenant "HOSP_C" (added through REST): created through REST'), 30_000, since);
    expect((await echo('HOSP_C', port)).code).toBe(0);
    const stored = await store('HOSP_C', port, instance.path);
    expect(stored.code, stored.stderr).toBe(0);
    expect((await orthanc.rest<string[]>('GET', `/instances/${orthancIds(instance).instance}/labels`)).body).toEqual(['hosp_c']);
  });

  it('is in the operator\'s view: status, counters, metrics, and an audit event of its creation', async () => {
    expect((await tenantsOf(orthanc)).map((tenant) => tenant.AET)).toEqual(['CONFIGURED', 'HOSP_C']);
    await expect.poll(async () => (await tenantOf(orthanc, 'HOSP_C')).Counters.InstancesReceived, { timeout: 20_000 }).toBe(1);
    expect(await tenantOf(orthanc, 'HOSP_C')).toMatchObject({ Port: port, Labels: ['hosp_c'], State: 'Listening', Error: null });
    expect((await tenantOf(orthanc, 'HOSP_C')).Counters.Echo).toBe(1);
    expect(metricValue(await metricsOf(orthanc), 'multitenant_dicom_listening{tenant="HOSP_C"}')).toBe(1);
    const created = await waitForAudit(orthanc, { tenant: 'HOSP_C', operation: 'TENANT-CREATED' }, () => true, 'the creation of HOSP_C');
    expect(created).toMatchObject({ EventID: 110113, Outcome: 'Success', Status: null, Port: port, Labels: ['hosp_c'], LabelsConstraint: 'All' });
  });

  it('refuses a bad entry (400) with the configuration\'s message, naming the tenant and the key', async () => {
    const bad = await orthanc.rest<{ error: string }>('PUT', `${ROUTE}/HOSP_X`, { Port: '4343x', Labels: ['x'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('Tenant "HOSP_X": "Port" must be an integer from 1 to 65535, got "4343x"');
    const notJson = await orthanc.rest<{ error: string }>('PUT', `${ROUTE}/HOSP_X`, 'Port=4343');
    expect(notJson.status).toBe(400);
    const otherAet = await orthanc.rest<{ error: string }>('PUT', `${ROUTE}/HOSP_X`, { AET: 'HOSP_Y', Port: port + 1, Labels: ['x'] });
    expect(otherAet.status).toBe(400);
    expect(otherAet.body.error).toMatch(/is not the AET of the URI/);
  });

  it('refuses (409) an AET or a port another tenant uses, and a tenant of the configuration file, naming the file', async () => {
    const samePort = await orthanc.rest<{ error: string }>('PUT', `${ROUTE}/HOSP_D`, { Port: configuredPort, Labels: ['d'] });
    expect(samePort.status).toBe(409);
    expect(samePort.body.error).toBe(`Tenant "HOSP_D": "Port" ${configuredPort} is already used by Servers[0] (AET "CONFIGURED")`);
    const configured = await orthanc.rest<{ error: string }>('PUT', `${ROUTE}/CONFIGURED`, { Port: port + 2, Labels: ['c'] });
    expect(configured.status).toBe(409);
    expect(configured.body.error).toContain(`MultitenantDicom.Servers[0] (AET "CONFIGURED") is defined in ${join(orthanc.directory, 'configuration.json')}`);
    expect((await orthanc.rest('DELETE', `${ROUTE}/CONFIGURED`)).status).toBe(409);
  });

  it('changes a tenant (200): new labels apply to the next stores, its port stays open', async () => {
    const changed = await orthanc.rest<Record<string, unknown>>('PUT', `${ROUTE}/HOSP_C`, { Port: port, Labels: ['hosp_c', 'hosp_c2'], LabelsConstraint: 'Any' });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(changed.body).toMatchObject({ Labels: ['hosp_c', 'hosp_c2'], LabelsConstraint: 'Any', State: 'Listening' });
    expect((await echo('HOSP_C', port)).code).toBe(0);
    const next = await writeInstance(join(work, 'data'), { ...instance, path: undefined, sopInstanceUid: '1.2.826.0.1.3680043.10.1234.8181.2' });
    expect((await store('HOSP_C', port, next.path)).code).toBe(0);
    expect((await orthanc.rest<string[]>('GET', `/instances/${orthancIds(next).instance}/labels`)).body.sort()).toEqual(['hosp_c', 'hosp_c2']);
    const audited = await waitForAudit(orthanc, { tenant: 'HOSP_C', operation: 'TENANT-CHANGED' }, () => true, 'the change of HOSP_C');
    expect(audited).toMatchObject({ Labels: ['hosp_c', 'hosp_c2'], LabelsConstraint: 'Any' });
    // A change keeps the tenant's counters (operations reach them in batches, within 100 ms).
    await expect.poll(async () => (await tenantOf(orthanc, 'HOSP_C')).Counters.Echo, { timeout: 20_000 }).toBe(2);
  });

  it('moves a tenant to another port: the old one closes, the new one opens', async () => {
    const newPort = await freePort();
    const moved = await orthanc.rest('PUT', `${ROUTE}/HOSP_C`, { Port: newPort, Labels: ['hosp_c'] });
    expect(moved.status).toBe(200);
    await waitForPort(port, false);
    expect((await echo('HOSP_C', newPort)).code).toBe(0);
    port = newPort;
  });

  it('survives a restart: kept in Orthanc\'s database, opened again', async () => {
    await orthanc.stop();
    orthanc = await start();
    await waitForPort(port, true);
    expect((await echo('HOSP_C', port)).code).toBe(0);
  });

  it('DELETE closes its port (200); its data stays; an unknown AET is 404', async () => {
    const deleted = await orthanc.rest('DELETE', `${ROUTE}/HOSP_C`);
    expect(deleted.status).toBe(200);
    await waitForPort(port, false);
    expect((await orthanc.rest('GET', `/instances/${orthancIds(instance).instance}`)).status).toBe(200);
    expect((await orthanc.rest('DELETE', `${ROUTE}/HOSP_C`)).status).toBe(404);
    expect(orthanc.log()).toContain('MultitenantDicom tenant "HOSP_C" (added through REST): deleted through REST (its port is closed, its data stays)');
    expect((await orthanc.rest('GET', `${ROUTE}/HOSP_C`)).status).toBe(404);
    expect((await tenantsOf(orthanc)).map((tenant) => tenant.AET)).toEqual(['CONFIGURED']);
    expect(await metricsOf(orthanc)).not.toContain('tenant="HOSP_C"');
    await waitForAudit(orthanc, { tenant: 'HOSP_C', operation: 'TENANT-DELETED' }, () => true, 'the deletion of HOSP_C');
    // Refused changes are not audited as changes.
    expect((await auditOf(orthanc, { tenant: 'HOSP_X' })).length).toBe(0);
  });
});
