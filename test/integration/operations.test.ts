// The operator's view (issue 10) against a real Orthanc and real DCMTK clients: every route
// of /plugins/multitenant-dicom, every metric family, every field of the audit trail on
// success and refusal paths, an unwritable audit trail and a full disk, a timeout of the
// JavaScript side, a tenant whose port is taken.
//
// Orthancs, started side by side:
// - "main": HOSPITAL_A (AllowedMoveDestinations ["ws"]), HOSPITAL_B, and BUSY, whose port
//   this process holds; the audit trail in a temporary folder; DicomAlwaysAllow* false,
//   so that an AET outside DicomModalities cannot associate;
// - "unwritable": its audit trail inside a folder that is a regular file;
// - "full": its audit trail on /dev/full (every write: ENOSPC, as a full disk);
// - "hanging": no audit trail, and its C-FIND handler never answers (MTD_FAULT_INJECTION).
// Events reach the plugin moments after each operation: every check polls a route.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../src/audit.js';
import { echoOutcome, echoscu, findscu, runTool, storescu } from '../support/dcmtk.js';
import { writeInstance, type SyntheticInstance } from '../support/dataset.js';
import { auditOf, metricsOf, metricValue, ROUTES_PREFIX, tenantOf, tenantsOf, until, waitForAudit } from '../support/operating.js';
import { freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { logMessages, multitenantSection, PLUGIN_PATH } from '../support/plugin.js';

const A = 'HOSPITAL_A';
const B = 'HOSPITAL_B';
const CALLER = 'MODALITY';
const ROOT = '1.2.826.0.1.3680043.10.1234.97';

let directory: string;
let main: RunningOrthanc;
let unwritable: RunningOrthanc;
let full: RunningOrthanc;
let hanging: RunningOrthanc;
let unmetered: RunningOrthanc;
let unmeteredPort: number;
let portA: number;
let portB: number;
let busyPort: number;
let hangingPort: number;
let occupier: Server;
let storescp: ChildProcess;
let unwritableParent: string;
let instance: SyntheticInstance;
let testStart: number;

const children: ChildProcess[] = [];
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

const COMMON_KEYS = ['Time', 'Tenant', 'Operation', 'EventID', 'Outcome', 'Status', 'CallingAET', 'CalledAET', 'PeerAddress'];
const KEYS: Record<AuditEntry['Operation'], string[]> = {
  'A-ASSOCIATE': [...COMMON_KEYS, 'DurationMs'],
  'C-ECHO': [...COMMON_KEYS, 'DurationMs'],
  'C-STORE': [...COMMON_KEYS, 'PatientIDs', 'StudyInstanceUIDs', 'SOPInstanceUID', 'DurationMs'],
  'C-FIND': [...COMMON_KEYS, 'Level', 'Query', 'PatientIDs', 'StudyInstanceUIDs', 'DurationMs'],
  'C-MOVE': [...COMMON_KEYS, 'Level', 'Query', 'PatientIDs', 'StudyInstanceUIDs', 'Instances', 'Destination', 'DurationMs'],
  'C-GET': [...COMMON_KEYS, 'Level', 'Query', 'PatientIDs', 'StudyInstanceUIDs', 'Instances', 'DurationMs'],
};

/** The fields every entry has, checked for what they must be. */
function expectWellFormed(entry: AuditEntry, tenant: string) {
  expect(Object.keys(entry), `keys of ${JSON.stringify(entry)}`).toEqual(KEYS[entry.Operation]);
  expect(entry.Time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  expect(Date.parse(entry.Time)).toBeGreaterThanOrEqual(testStart - 1_000);
  expect(Date.parse(entry.Time)).toBeLessThanOrEqual(Date.now());
  expect(entry.Tenant).toBe(tenant);
  expect(entry.CalledAET).toBe(tenant);
  expect(entry.PeerAddress).toBe('127.0.0.1');
  expect(entry.DurationMs).toBeGreaterThanOrEqual(0);
  expect(entry.DurationMs).toBeLessThan(60_000);
  if (entry.Status !== null) expect(entry.Status).toMatch(/^0x[0-9A-F]{4}$/);
}

async function movescu(port: number, calledAet: string, destination: string, keys: string[]) {
  return runTool('movescu', ['-aet', CALLER, '-aec', calledAet, '-aem', destination, '-S', ...keys.flatMap((key) => ['-k', key]), '127.0.0.1', String(port)], 60_000);
}

async function getscu(port: number, calledAet: string, keys: string[]) {
  const output = await mkdtemp(join(directory, 'get-'));
  try {
    return await runTool('getscu', ['-aet', CALLER, '-aec', calledAet, '-od', output, '-S', ...keys.flatMap((key) => ['-k', key]), '127.0.0.1', String(port)], 60_000);
  } finally {
    await rm(output, { recursive: true, force: true });
  }
}

/** A storescp that accepts anything, as the move destination "ws". */
async function startStorescp(aet: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const output = join(directory, `storescp-${aet}`);
  mkdirSync(output, { recursive: true });
  const child = spawn('storescp', ['-aet', aet, '-od', output, String(port)], { stdio: 'ignore' });
  children.push(child);
  await until(async () => (await echoscu({ port, calledAet: aet, callingAet: 'PROBE', timeoutMs: 5_000 })).ok, `storescp ${aet}`);
  return { child, port };
}

function startWithPlugin(configuration: Record<string, unknown>, ports: number[], env: Record<string, string> = {}) {
  return startOrthanc({ configuration, plugins: [PLUGIN_PATH], waitForPorts: ports, env });
}

beforeAll(async () => {
  testStart = Date.now();
  directory = await mkdtemp(join(tmpdir(), 'operations-test-'));
  [portA, portB, hangingPort] = [await freePort(), await freePort(), await freePort()];
  const unwritablePort = await freePort();
  const fullPort = await freePort();
  unmeteredPort = await freePort();

  // Another process holds BUSY's port, on every interface.
  occupier = createServer().listen(0, '0.0.0.0');
  await new Promise((resolve) => occupier.once('listening', resolve));
  busyPort = (occupier.address() as { port: number }).port;

  const ws = await startStorescp('WS');
  storescp = ws.child;
  instance = await writeInstance(directory, {
    sopInstanceUid: `${ROOT}.1.1.1`,
    studyInstanceUid: `${ROOT}.1`,
    seriesInstanceUid: `${ROOT}.1.1`,
    patientId: 'OPS-PATIENT-A',
    patientName: 'Operations^Alice',
    modality: 'CT',
  });

  unwritableParent = join(directory, 'not-a-folder');
  writeFileSync(unwritableParent, 'a regular file where the audit trail\'s folder should be');

  const callers = {
    modality: { AET: CALLER, Host: '127.0.0.1', Port: 104 },
    noecho: { AET: 'NOECHO', Host: '127.0.0.1', Port: 104, AllowEcho: false },
    ws: { AET: 'WS', Host: '127.0.0.1', Port: ws.port },
    other: { AET: 'OTHER', Host: '127.0.0.1', Port: 9 },
  };
  const strict = {
    DicomAlwaysAllowEcho: false,
    DicomAlwaysAllowStore: false,
    DicomAlwaysAllowFind: false,
    DicomAlwaysAllowMove: false,
    DicomAlwaysAllowGet: false,
    DicomModalities: callers,
  };
  [main, unwritable, full, hanging, unmetered] = await Promise.all([
    startWithPlugin(
      {
        ...strict,
        MultitenantDicom: {
          Servers: [
            { AET: A, Port: portA, Labels: ['hospital-a'], AllowedMoveDestinations: ['ws'] },
            { AET: B, Port: portB, Labels: ['hospital-b'] },
            { AET: 'BUSY', Port: busyPort, Labels: ['busy'] },
          ],
          AuditLog: { Path: join(directory, 'main-audit.jsonl') },
        },
      },
      [portA, portB],
    ),
    startWithPlugin(
      { ...strict, MultitenantDicom: { Servers: [{ AET: 'UNWRITABLE', Port: unwritablePort, Labels: ['u'] }], AuditLog: { Path: join(unwritableParent, 'audit.jsonl') } } },
      [unwritablePort],
    ),
    startWithPlugin(
      { ...strict, MultitenantDicom: { Servers: [{ AET: 'FULL', Port: fullPort, Labels: ['f'] }], AuditLog: { Path: '/dev/full' } } },
      [fullPort],
    ),
    startWithPlugin(
      { ...strict, DicomScpTimeout: 2, ...multitenantSection({ AET: 'HANGING', Port: hangingPort, Labels: ['h'] }) },
      [hangingPort],
      { MTD_FAULT_INJECTION: 'hang:find@HANGING' },
    ),
    // Orthanc's own metrics off: the plugin's follow (no "Metrics" of its own).
    startWithPlugin({ MetricsEnabled: false, ...multitenantSection({ AET: 'UNMETERED', Port: unmeteredPort, Labels: ['m'] }) }, [unmeteredPort]),
  ]);
  (unwritable as RunningOrthanc & { tenantPort: number }).tenantPort = unwritablePort;
  (full as RunningOrthanc & { tenantPort: number }).tenantPort = fullPort;
}, 180_000);

afterAll(async () => {
  await stopAllOrthancs();
  storescp?.kill();
  occupier?.close();
  if (directory !== undefined) await rm(directory, { recursive: true, force: true });
});

const tenantPortOf = (orthanc: RunningOrthanc) => (orthanc as RunningOrthanc & { tenantPort: number }).tenantPort;

describe('the status API', () => {
  it('lists the tenants in configuration order; a tenant whose port is taken is "Failed" with the reason, the others run', async () => {
    await expect.poll(async () => (await tenantsOf(main)).map((tenant) => tenant.State), { timeout: 20_000 }).toEqual(['Listening', 'Listening', 'Failed']);
    const [a, b, busy] = await tenantsOf(main);
    expect(a).toMatchObject({
      AET: A,
      Port: portA,
      Labels: ['hospital-a'],
      LabelsConstraint: 'All',
      LabelsStoreLevels: ['Study', 'Series', 'Instance'],
      State: 'Listening',
      Error: null,
    });
    expect(Object.keys(a!)).toEqual(['AET', 'Port', 'Labels', 'LabelsConstraint', 'LabelsStoreLevels', 'State', 'Error', 'ActiveAssociations', 'Counters']);
    expect(Object.keys(a!.Counters)).toEqual([
      'Associations', 'AssociationsRefused', 'Echo', 'Store', 'StoreFailed', 'Find', 'FindFailed',
      'Move', 'MoveFailed', 'Get', 'GetFailed', 'InstancesReceived', 'BytesReceived', 'InstancesSent',
    ]);
    expect(b).toMatchObject({ AET: B, Port: portB, State: 'Listening', Error: null });
    expect(busy).toMatchObject({ AET: 'BUSY', Port: busyPort, State: 'Failed', ActiveAssociations: 0 });
    expect(busy!.Error).toMatch(new RegExp(`^cannot listen on port ${busyPort} \\(.+\\)$`));
    expect(echoOutcome(await echoscu({ port: portB, calledAet: B, callingAet: CALLER }))).toBe('accepted');
  });

  it('answers one tenant by its AET, and 404 with a JSON error for an unknown AET', async () => {
    const one = await main.rest('GET', `${ROUTES_PREFIX}/tenants/${A}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ AET: A, Port: portA, State: 'Listening' });
    const unknown = await main.rest('GET', `${ROUTES_PREFIX}/tenants/NOBODY`);
    expect(unknown).toEqual({ status: 404, body: { error: 'no tenant has the AET "NOBODY"' } });
  });

  it('answers an unknown route with 404 and a JSON error, another method with 405 and its Allow header', async () => {
    const unknown = await main.rest<{ error: string }>('GET', `${ROUTES_PREFIX}/tenants/${A}/counters`);
    expect(unknown).toEqual({ status: 404, body: { error: `no route GET ${ROUTES_PREFIX}/tenants/${A}/counters` } });
    const response = await fetch(`http://127.0.0.1:${main.httpPort}${ROUTES_PREFIX}/metrics`, { method: 'DELETE' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET');
    expect((await main.rest('POST', `${ROUTES_PREFIX}/tenants`, '{}')).status).toBe(405);
  });

  it('counts the open connections to a tenant\'s port as active associations', async () => {
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const socket = connect(portA, '127.0.0.1');
        await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
        sockets.push(socket);
      }
      expect((await tenantOf(main, A)).ActiveAssociations).toBe(2);
      expect(metricValue(await metricsOf(main), `multitenant_dicom_active_associations{tenant="${A}"}`)).toBe(2);
      expect((await tenantOf(main, B)).ActiveAssociations).toBe(0);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    await expect.poll(async () => (await tenantOf(main, A)).ActiveAssociations, { timeout: 10_000 }).toBe(0);
  });
});

describe('the audit trail, operation by operation', () => {
  it('a C-ECHO, and its association', async () => {
    expect(echoOutcome(await echoscu({ port: portA, calledAet: A, callingAet: CALLER }))).toBe('accepted');
    const echo = await waitForAudit(main, { tenant: A, operation: 'C-ECHO' }, (e) => e.CallingAET === CALLER, 'the C-ECHO');
    expectWellFormed(echo, A);
    expect(echo).toMatchObject({ Operation: 'C-ECHO', EventID: 110114, Outcome: 'Success', Status: '0x0000', CallingAET: CALLER });
    const association = await waitForAudit(main, { tenant: A, operation: 'A-ASSOCIATE' }, (e) => e.CallingAET === CALLER, 'the association');
    expectWellFormed(association, A);
    expect(association).toMatchObject({ EventID: 110114, Outcome: 'Success', Status: null });
  });

  it('an association refused (an AET outside DicomModalities, DicomAlwaysAllow* false)', async () => {
    expect(echoOutcome(await echoscu({ port: portA, calledAet: A, callingAet: 'STRANGER' }))).toMatch(/^association rejected/);
    const refused = await waitForAudit(main, { tenant: A, operation: 'A-ASSOCIATE' }, (e) => e.CallingAET === 'STRANGER', 'the refused association');
    expectWellFormed(refused, A);
    expect(refused).toMatchObject({ EventID: 110114, Outcome: 'Refused', Status: null });
    await expect.poll(async () => (await tenantOf(main, A)).Counters.AssociationsRefused).toBe(1);
  });

  it('a command refused by the access rules (AllowEcho false)', async () => {
    expect(echoOutcome(await echoscu({ port: portA, calledAet: A, callingAet: 'NOECHO' }))).toBe('echo refused');
    const refused = await waitForAudit(main, { tenant: A, operation: 'C-ECHO' }, (e) => e.CallingAET === 'NOECHO', 'the refused C-ECHO');
    expectWellFormed(refused, A);
    expect(refused).toMatchObject({ EventID: 110114, Outcome: 'Refused', Status: null });
  });

  it('a C-STORE', async () => {
    const stored = await storescu({ port: portA, calledAet: A, callingAet: CALLER, files: [instance.path] });
    expect(stored.ok, stored.stdout + stored.stderr).toBe(true);
    const entry = await waitForAudit(main, { tenant: A, operation: 'C-STORE' }, (e) => e.SOPInstanceUID === instance.sopInstanceUid, 'the C-STORE');
    expectWellFormed(entry, A);
    expect(entry).toMatchObject({
      EventID: 110104,
      Outcome: 'Success',
      Status: '0x0000',
      CallingAET: CALLER,
      PatientIDs: [instance.patientId],
      StudyInstanceUIDs: [instance.studyInstanceUid],
      SOPInstanceUID: instance.sopInstanceUid,
    });
    const counters = (await tenantOf(main, A)).Counters;
    expect(counters).toMatchObject({ Store: 1, StoreFailed: 0, InstancesReceived: 1 });
    // The instance as the shim serialised it: about the file's size.
    expect(counters.BytesReceived).toBeGreaterThan(statSync(instance.path).size * 0.8);
  });

  it('a C-STORE refused as foreign: the instance is another tenant\'s (0x0124, Security Alert)', async () => {
    await storescu({ port: portB, calledAet: B, callingAet: CALLER, files: [instance.path] });
    const entry = await waitForAudit(main, { tenant: B, operation: 'C-STORE' }, (e) => e.SOPInstanceUID === instance.sopInstanceUid, 'the refused C-STORE');
    expectWellFormed(entry, B);
    expect(entry).toMatchObject({
      EventID: 110113,
      Outcome: 'Refused',
      Status: '0x0124',
      PatientIDs: [instance.patientId],
      StudyInstanceUIDs: [instance.studyInstanceUid],
    });
    expect((await tenantOf(main, B)).Counters).toMatchObject({ Store: 1, StoreFailed: 1, InstancesReceived: 0 });
  });

  it('a C-FIND that matched nothing, and one that matched', async () => {
    const nothing = await findscu({ port: portA, calledAet: A, callingAet: CALLER, level: 'STUDY', keys: ['PatientID=NOBODY', 'StudyInstanceUID'] });
    expect(nothing.answers).toEqual([]);
    const empty = await waitForAudit(main, { tenant: A, operation: 'C-FIND' }, (e) => e.Query?.['PatientID'] === 'NOBODY', 'the empty C-FIND');
    expectWellFormed(empty, A);
    expect(empty).toMatchObject({
      EventID: 110112,
      Outcome: 'Success',
      Status: '0x0000',
      Level: 'STUDY',
      Query: { QueryRetrieveLevel: 'STUDY', PatientID: 'NOBODY', StudyInstanceUID: '' },
      PatientIDs: [],
      StudyInstanceUIDs: [],
    });

    const found = await findscu({ port: portA, calledAet: A, callingAet: CALLER, level: 'STUDY', keys: [`PatientID=${instance.patientId}`, 'StudyInstanceUID'] });
    expect(found.answers).toHaveLength(1);
    const matched = await waitForAudit(main, { tenant: A, operation: 'C-FIND', patient: instance.patientId }, () => true, 'the C-FIND that matched');
    expect(matched).toMatchObject({ Outcome: 'Success', PatientIDs: [instance.patientId], StudyInstanceUIDs: [instance.studyInstanceUid] });
  });

  it('a C-MOVE that matched nothing', async () => {
    const result = await movescu(portA, A, 'WS', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${ROOT}.404`]);
    expect(result.ok, result.stdout + result.stderr).toBe(true);
    const entry = await waitForAudit(main, { tenant: A, operation: 'C-MOVE' }, (e) => e.Query?.['StudyInstanceUID'] === `${ROOT}.404`, 'the empty C-MOVE');
    expectWellFormed(entry, A);
    expect(entry).toMatchObject({
      EventID: 110104,
      Outcome: 'Success',
      Status: '0x0000',
      Level: 'STUDY',
      Query: { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: `${ROOT}.404` },
      PatientIDs: [],
      StudyInstanceUIDs: [],
      Instances: 0,
      Destination: 'WS',
    });
  });

  it('a C-MOVE that sends a study', async () => {
    const result = await movescu(portA, A, 'WS', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${instance.studyInstanceUid}`]);
    expect(result.ok, result.stdout + result.stderr).toBe(true);
    const entry = await waitForAudit(main, { tenant: A, operation: 'C-MOVE' }, (e) => e.Instances === 1, 'the C-MOVE');
    expectWellFormed(entry, A);
    expect(entry).toMatchObject({
      EventID: 110104,
      Outcome: 'Success',
      Status: '0x0000',
      PatientIDs: [instance.patientId],
      StudyInstanceUIDs: [instance.studyInstanceUid],
      Instances: 1,
      Destination: 'WS',
    });
    await expect.poll(async () => (await tenantOf(main, A)).Counters.InstancesSent).toBe(1);
  });

  it('a C-MOVE to an unknown destination (0xA801)', async () => {
    await movescu(portA, A, 'NOWHERE', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${instance.studyInstanceUid}`]);
    const entry = await waitForAudit(main, { tenant: A, operation: 'C-MOVE' }, (e) => e.Destination === 'NOWHERE', 'the C-MOVE to NOWHERE');
    expectWellFormed(entry, A);
    expect(entry).toMatchObject({ EventID: 110104, Outcome: 'Refused', Status: '0xA801', Instances: 0, PatientIDs: [] });
  });

  it('a C-MOVE outside AllowedMoveDestinations (0x0124, Security Alert)', async () => {
    await movescu(portA, A, 'OTHER', ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${instance.studyInstanceUid}`]);
    const entry = await waitForAudit(main, { tenant: A, operation: 'C-MOVE' }, (e) => e.Destination === 'OTHER', 'the C-MOVE to OTHER');
    expectWellFormed(entry, A);
    expect(entry).toMatchObject({ EventID: 110113, Outcome: 'Refused', Status: '0x0124', Instances: 0 });
  });

  it('a C-GET', async () => {
    const result = await getscu(portA, A, ['QueryRetrieveLevel=STUDY', `StudyInstanceUID=${instance.studyInstanceUid}`]);
    expect(result.ok, result.stdout + result.stderr).toBe(true);
    const entry = await waitForAudit(main, { tenant: A, operation: 'C-GET' }, () => true, 'the C-GET');
    expectWellFormed(entry, A);
    expect(entry).toMatchObject({
      EventID: 110104,
      Outcome: 'Success',
      Status: '0x0000',
      Level: 'STUDY',
      Query: { QueryRetrieveLevel: 'STUDY', StudyInstanceUID: instance.studyInstanceUid },
      PatientIDs: [instance.patientId],
      StudyInstanceUIDs: [instance.studyInstanceUid],
      Instances: 1,
    });
  });
});

describe('what the audit trail, the counters and the metrics say together', () => {
  it('GET /audit filters by tenant, operation, time, patient, and limits, newest last; a bad parameter is a 400', async () => {
    const all = await auditOf(main, { limit: '10000' });
    expect(all.length).toBeGreaterThan(15);
    const times = all.map((entry) => entry.Time);
    expect(all.at(-1)!.Time >= all[0]!.Time).toBe(true);
    expect(await auditOf(main, { limit: '3' })).toEqual(all.slice(-3));
    expect((await auditOf(main, { tenant: B, limit: '10000' })).every((entry) => entry.Tenant === B)).toBe(true);
    expect((await auditOf(main, { operation: 'C-GET' })).map((entry) => entry.Operation)).toEqual(['C-GET']);
    const patient = await auditOf(main, { patient: instance.patientId, limit: '10000' });
    expect(patient.map((entry) => entry.Operation).sort()).toEqual(['C-FIND', 'C-GET', 'C-MOVE', 'C-STORE', 'C-STORE']);
    const middle = times[Math.floor(times.length / 2)]!;
    expect((await auditOf(main, { since: middle, limit: '10000' })).every((entry) => entry.Time >= middle)).toBe(true);
    expect((await auditOf(main, { until: middle, limit: '10000' })).every((entry) => entry.Time < middle)).toBe(true);

    const bad = await main.rest<{ error: string; parameter: string }>('GET', `${ROUTES_PREFIX}/audit?operation=C-DANCE`);
    expect(bad.status).toBe(400);
    expect(bad.body.parameter).toBe('operation');
    expect(bad.body.error).toMatch(/"operation" must be one of/);
  });

  it('the file holds one JSON object per line, the entries of the route', async () => {
    const lines = readFileSync(join(directory, 'main-audit.jsonl'), 'utf8').split('\n');
    expect(lines.at(-1)).toBe('');
    const entries = lines.slice(0, -1).map((line) => JSON.parse(line) as AuditEntry);
    expect(await auditOf(main, { limit: '10000' })).toEqual(entries);
  });

  it('the counters and the metrics count what the audit trail records', async () => {
    const entries = await auditOf(main, { limit: '10000' });
    const text = await metricsOf(main);
    const statuses = await tenantsOf(main);
    for (const tenant of [A, B]) {
      const of = (operation: string, outcome?: string) =>
        entries.filter((e) => e.Tenant === tenant && e.Operation === operation && (outcome === undefined || e.Outcome === outcome)).length;
      const counters = statuses.find((status) => status.AET === tenant)!.Counters;
      expect(counters.Associations, tenant).toBe(of('A-ASSOCIATE'));
      expect(counters.AssociationsRefused).toBe(of('A-ASSOCIATE', 'Refused'));
      for (const [operation, total, failed] of [
        ['C-STORE', 'Store', 'StoreFailed'],
        ['C-FIND', 'Find', 'FindFailed'],
        ['C-MOVE', 'Move', 'MoveFailed'],
        ['C-GET', 'Get', 'GetFailed'],
      ] as const) {
        expect(counters[total], `${tenant} ${total}`).toBe(of(operation));
        expect(counters[failed], `${tenant} ${failed}`).toBe(of(operation) - of(operation, 'Success'));
      }
      expect(counters.Echo).toBe(of('C-ECHO'));
      const sent = entries.filter((e) => e.Tenant === tenant).reduce((sum, e) => sum + (e.Instances ?? 0), 0);
      expect(counters.InstancesSent).toBe(sent);

      const series = (name: string, labels = '') => metricValue(text, `multitenant_dicom_${name}{tenant="${tenant}"${labels}}`);
      for (const operation of ['C-ECHO', 'C-STORE', 'C-FIND', 'C-MOVE', 'C-GET']) {
        for (const outcome of ['Success', 'Refused', 'Failure']) {
          expect(series('requests_total', `,operation="${operation}",outcome="${outcome.toLowerCase()}"`), `${tenant} ${operation} ${outcome}`).toBe(
            of(operation, outcome),
          );
        }
        expect(metricValue(text, `multitenant_dicom_request_duration_seconds_count{tenant="${tenant}",operation="${operation}"}`)).toBe(of(operation));
      }
      expect(series('associations_total')).toBe(counters.Associations);
      expect(series('associations_refused_total')).toBe(counters.AssociationsRefused);
      expect(series('received_bytes_total')).toBe(counters.BytesReceived);
      expect(series('received_instances_total')).toBe(counters.InstancesReceived);
      expect(series('sent_instances_total')).toBe(counters.InstancesSent);
      expect(series('audit_write_failures_total')).toBe(0);
      expect(series('javascript_timeouts_total')).toBe(0);
      expect(series('listening')).toBe(1);
    }
    expect(metricValue(text, 'multitenant_dicom_listening{tenant="BUSY"}')).toBe(0);
    // Real traffic moved them.
    expect(metricValue(text, `multitenant_dicom_requests_total{tenant="${A}",operation="C-STORE",outcome="success"}`)).toBe(1);
    expect(metricValue(text, `multitenant_dicom_requests_total{tenant="${B}",operation="C-STORE",outcome="refused"}`)).toBe(1);
    expect(metricValue(text, `multitenant_dicom_request_duration_seconds_sum{tenant="${A}",operation="C-FIND"}`)).toBeGreaterThan(0);
  });

  it('every metric family is there, in the Prometheus format, every series labelled by tenant', async () => {
    const response = await fetch(`http://127.0.0.1:${main.httpPort}${ROUTES_PREFIX}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4; charset=utf-8/);
    const text = await response.text();
    for (const [family, type] of [
      ['requests_total', 'counter'],
      ['request_duration_seconds', 'histogram'],
      ['associations_total', 'counter'],
      ['associations_refused_total', 'counter'],
      ['active_associations', 'gauge'],
      ['listening', 'gauge'],
      ['received_bytes_total', 'counter'],
      ['received_instances_total', 'counter'],
      ['sent_instances_total', 'counter'],
      ['javascript_timeouts_total', 'counter'],
      ['audit_write_failures_total', 'counter'],
    ]) {
      expect(text).toContain(`# TYPE multitenant_dicom_${family} ${type}\n`);
    }
    const samples = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    for (const sample of samples) expect(sample).toMatch(/^multitenant_dicom_\w+\{(.*,)?tenant="(HOSPITAL_A|HOSPITAL_B|BUSY)"[,}]/);
    // Orthanc's own metrics are untouched, and have none of the plugin's.
    const orthancMetrics = await main.rest<string>('GET', '/tools/metrics-prometheus');
    expect(orthancMetrics.status).toBe(200);
    expect(orthancMetrics.body).toContain('orthanc_');
    expect(orthancMetrics.body).not.toContain('multitenant_dicom_');
  });

  it('GET /activity has the operations of the last minutes', async () => {
    const answer = await main.rest<{ Start: string; Minutes: number; Tenants: { AET: string; Operations: Record<string, number[]>; Failed: number[] }[] }>(
      'GET',
      `${ROUTES_PREFIX}/activity`,
    );
    expect(answer.status).toBe(200);
    expect(answer.body.Minutes).toBe(60);
    expect(answer.body.Tenants.map((tenant) => tenant.AET)).toEqual([A, B, 'BUSY']);
    const a = answer.body.Tenants[0]!;
    const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
    expect(sum(a.Operations['C-STORE']!)).toBe(1);
    expect(sum(a.Operations['C-MOVE']!)).toBe(4);
    expect(sum(a.Failed)).toBe((await auditOf(main, { tenant: A, limit: '10000' })).filter((e) => e.Outcome !== 'Success').length);
  });

  it('the status page and the links to it', async () => {
    const page = await main.rest<string>('GET', `${ROUTES_PREFIX}/ui/`);
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/^<!doctype html>/);
    const plugin = await main.rest<{ RootUri: string; ExtendsOrthancExplorer: boolean }>('GET', '/plugins/multitenant-dicom');
    expect(plugin.body.RootUri).toMatch(/\/plugins\/multitenant-dicom\/ui\/$/);
    expect(plugin.body.ExtendsOrthancExplorer).toBe(true);
    const explorer = await main.rest<string | Buffer>('GET', '/plugins/explorer.js');
    expect(String(explorer.body)).toContain('../plugins/multitenant-dicom/ui/');
  });
});

describe('an audit trail that cannot be written', () => {
  const storeOne = async (orthanc: RunningOrthanc, aet: string, n: number) => {
    const file = await writeInstance(directory, { sopInstanceUid: `${ROOT}.${aet === 'FULL' ? 3 : 2}.${n}`, patientId: `OPS-${aet}` });
    const result = await storescu({ port: tenantPortOf(orthanc), calledAet: aet, callingAet: CALLER, files: [file.path] });
    expect(result.ok, result.stdout + result.stderr).toBe(true);
    return file;
  };
  const auditErrors = (orthanc: RunningOrthanc) => logMessages(orthanc.log(), 'E').filter((m) => m.includes('cannot write the audit trail'));

  /** Three stores succeed; their six events (an association and a C-STORE each) are counted as lost, with one error line. */
  async function storeThreeUnaudited(orthanc: RunningOrthanc, aet: string, error: RegExp): Promise<void> {
    for (let n = 1; n <= 3; n++) await storeOne(orthanc, aet, n);
    expect((await orthanc.rest<string[]>('GET', '/instances')).body).toHaveLength(3);
    await expect
      .poll(async () => metricValue(await metricsOf(orthanc), `multitenant_dicom_audit_write_failures_total{tenant="${aet}"}`), { timeout: 20_000 })
      .toBe(6);
    // The error line reaches Orthanc's log through another pipe than the metrics' answer.
    await orthanc.waitForLog(/cannot write the audit trail/);
    expect(auditErrors(orthanc)).toHaveLength(1);
    expect(auditErrors(orthanc)[0]).toMatch(error);
    expect((await tenantOf(orthanc, aet)).Counters).toMatchObject({ Store: 3, StoreFailed: 0, InstancesReceived: 3 });
  }

  it('(its folder is a file): the stores go on, the failures are counted, one error line, and writing resumes once it can', async () => {
    await storeThreeUnaudited(unwritable, 'UNWRITABLE', new RegExp(`^multitenant-dicom: cannot write the audit trail ${unwritableParent}/audit\\.jsonl: ENOTDIR`));
    const read = await unwritable.rest<{ error: string }>('GET', `${ROUTES_PREFIX}/audit`);
    expect(read.status).toBe(500);
    expect(read.body.error).toMatch(/cannot read the audit trail/);

    // The folder appears: within a second (the retry delay), events are written again.
    rmSync(unwritableParent);
    mkdirSync(unwritableParent);
    let n = 4;
    await expect
      .poll(
        async () => {
          await storeOne(unwritable, 'UNWRITABLE', n++);
          return existsSync(join(unwritableParent, 'audit.jsonl')) && (await auditOf(unwritable)).some((e) => e.Operation === 'C-STORE');
        },
        { timeout: 20_000, interval: 200 },
      )
      .toBe(true);
    await unwritable.waitForLog(/the audit trail .* is written again; \d+ audit event\(s\) could not be written before/);
    expect(auditErrors(unwritable)).toHaveLength(1);
  });

  it('(a full disk, /dev/full): the stores go on, the failures are counted, one error line', async () => {
    await storeThreeUnaudited(full, 'FULL', /cannot write the audit trail \/dev\/full: ENOSPC/);
  });
});

describe('without an audit trail, and with a JavaScript side that does not answer', () => {
  it('says so at startup, and GET /audit is a 404 saying so', async () => {
    expect(logMessages(hanging.log(), 'W')).toContain(
      'MultitenantDicom: no "AuditLog" in the configuration, the DICOM operations through the tenants are not audited',
    );
    const answer = await hanging.rest<{ error: string }>('GET', `${ROUTES_PREFIX}/audit`);
    expect(answer.status).toBe(404);
    expect(answer.body.error).toMatch(/no audit trail/);
  });

  it('counts a C-FIND whose JavaScript handler never answers as a timeout and a failure', async () => {
    const result = await findscu({ port: hangingPort, calledAet: 'HANGING', callingAet: CALLER, level: 'STUDY', keys: ['PatientID'] });
    expect(result.answers).toEqual([]);
    await expect
      .poll(async () => metricValue(await metricsOf(hanging), 'multitenant_dicom_javascript_timeouts_total{tenant="HANGING"}'), { timeout: 20_000 })
      .toBe(1);
    const text = await metricsOf(hanging);
    expect(metricValue(text, 'multitenant_dicom_requests_total{tenant="HANGING",operation="C-FIND",outcome="failure"}')).toBe(1);
    expect((await tenantOf(hanging, 'HANGING')).Counters).toMatchObject({ Find: 1, FindFailed: 1 });
  });
});

describe('with the metrics disabled (Orthanc\'s MetricsEnabled: false, no "Metrics" of the plugin\'s own)', () => {
  it('GET /metrics is a 404 naming the keys; the status API still counts', async () => {
    const answer = await unmetered.rest<{ error: string }>('GET', `${ROUTES_PREFIX}/metrics`);
    expect(answer.status).toBe(404);
    expect(answer.body.error).toBe(
      'MultitenantDicom: the metrics are disabled (MultitenantDicom.Metrics.Enabled, or else Orthanc\'s MetricsEnabled, is false)',
    );
    expect(echoOutcome(await echoscu({ port: unmeteredPort, calledAet: 'UNMETERED', callingAet: CALLER }))).toBe('accepted');
    await expect.poll(async () => (await tenantOf(unmetered, 'UNMETERED')).Counters.Echo, { timeout: 20_000 }).toBe(1);
  });
});
