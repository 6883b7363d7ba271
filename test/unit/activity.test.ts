import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Activity, COUNTER_KEYS, MAX_KEPT_AUDITED, count, establishedConnections, HISTORY_MINUTES, MinuteHistory, type Counters } from '../../src/activity.js';
import type { ServerEvent } from '../../src/bridge.js';
import type { TenantConfig } from '../../src/configuration.js';
import { AuditEventId, eventIdOf, outcomeOf, type OperationEvent } from '../../src/outcomes.js';

const directory = mkdtempSync(join(tmpdir(), 'activity-test-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function operation(fields: Partial<OperationEvent> & Pick<OperationEvent, 'operation'>): OperationEvent {
  return {
    type: 'operation',
    tenant: 0,
    at: Date.parse('2026-12-06T10:00:00.000Z'),
    durationMs: 12.5,
    callingAet: 'MODALITY',
    calledAet: 'HOSPITAL_A',
    peer: '127.0.0.1',
    ...fields,
  };
}

function tenant(index: number, aet: string, port: number): TenantConfig {
  return {
    index,
    aet,
    port,
    labels: [aet.toLowerCase()],
    labelsConstraint: 'All',
    labelsStoreLevels: ['Study', 'Series', 'Instance'],
    foreignInstances: 'Reject',
  };
}

const silentLog = { info: () => {}, warning: () => {}, error: () => {} };

describe('outcome', () => {
  it.each([
    [operation({ operation: 'A-ASSOCIATE' }), 'Success'],
    [operation({ operation: 'A-ASSOCIATE', refusedByAccessRules: true }), 'Refused'],
    [operation({ operation: 'C-ECHO', status: 0 }), 'Success'],
    [operation({ operation: 'C-ECHO', refusedByAccessRules: true }), 'Refused'],
    [operation({ operation: 'C-FIND', refusedByAccessRules: true }), 'Refused'],
    [operation({ operation: 'C-STORE', status: 0 }), 'Success'],
    [operation({ operation: 'C-STORE', status: 0xb000 }), 'Success'],
    [operation({ operation: 'C-STORE', status: 0xb007 }), 'Success'],
    [operation({ operation: 'C-STORE', status: 0x0124 }), 'Refused'],
    [operation({ operation: 'C-STORE', status: 0xa700 }), 'Failure'],
    [operation({ operation: 'C-STORE', status: 0xc000 }), 'Failure'],
    [operation({ operation: 'C-STORE' }), 'Failure'],
    [operation({ operation: 'C-FIND', status: 0 }), 'Success'],
    [operation({ operation: 'C-FIND', status: 0xc000 }), 'Failure'],
    [operation({ operation: 'C-FIND', status: 0xfe00 }), 'Failure'],
    [operation({ operation: 'C-FIND', status: 0x0124 }), 'Failure'],
    [operation({ operation: 'C-MOVE', status: 0 }), 'Success'],
    [operation({ operation: 'C-MOVE', status: 0xb000 }), 'Success'],
    [operation({ operation: 'C-MOVE', status: 0x0124 }), 'Refused'],
    [operation({ operation: 'C-MOVE', status: 0xa801 }), 'Refused'],
    [operation({ operation: 'C-MOVE', status: 0xa702 }), 'Failure'],
    [operation({ operation: 'C-GET', status: 0 }), 'Success'],
    [operation({ operation: 'C-GET', status: 0xa801 }), 'Failure'],
    [operation({ operation: 'C-GET', status: 0xc000 }), 'Failure'],
  ])('%o is %s', (event, outcome) => {
    expect(outcomeOf(event)).toBe(outcome);
  });
});

describe('audit event code (PS3.15 A.5)', () => {
  it.each([
    [operation({ operation: 'A-ASSOCIATE' }), AuditEventId.UserAuthentication],
    [operation({ operation: 'A-ASSOCIATE', refusedByAccessRules: true }), AuditEventId.UserAuthentication],
    [operation({ operation: 'C-ECHO', status: 0 }), AuditEventId.UserAuthentication],
    [operation({ operation: 'C-STORE', status: 0 }), AuditEventId.InstancesTransferred],
    [operation({ operation: 'C-STORE', status: 0xa700 }), AuditEventId.InstancesTransferred],
    [operation({ operation: 'C-STORE', status: 0x0124 }), AuditEventId.SecurityAlert],
    [operation({ operation: 'C-STORE', refusedByAccessRules: true }), AuditEventId.UserAuthentication],
    [operation({ operation: 'C-FIND', status: 0 }), AuditEventId.Query],
    [operation({ operation: 'C-FIND', refusedByAccessRules: true }), AuditEventId.UserAuthentication],
    [operation({ operation: 'C-MOVE', status: 0 }), AuditEventId.InstancesTransferred],
    [operation({ operation: 'C-MOVE', status: 0x0124 }), AuditEventId.SecurityAlert],
    [operation({ operation: 'C-MOVE', status: 0xa801 }), AuditEventId.InstancesTransferred],
    [operation({ operation: 'C-MOVE', refusedByAccessRules: true }), AuditEventId.UserAuthentication],
    [operation({ operation: 'C-GET', status: 0 }), AuditEventId.InstancesTransferred],
  ])('%o is %i', (event, eventId) => {
    expect(eventIdOf(event)).toBe(eventId);
  });

  it('uses the DCM code values', () => {
    expect(AuditEventId).toEqual({ InstancesTransferred: 110104, Query: 110112, SecurityAlert: 110113, UserAuthentication: 110114 });
  });
});

describe('counters', () => {
  const zero = () => Object.fromEntries(COUNTER_KEYS.map((key) => [key, 0])) as Counters;
  const after = (...events: OperationEvent[]) => {
    const counters = zero();
    for (const event of events) count(counters, event, outcomeOf(event));
    return counters;
  };

  it('have exactly the keys of the status API', () => {
    expect(COUNTER_KEYS).toEqual([
      'Associations', 'AssociationsRefused', 'Echo', 'Store', 'StoreFailed', 'Find', 'FindFailed',
      'Move', 'MoveFailed', 'Get', 'GetFailed', 'InstancesReceived', 'BytesReceived', 'InstancesSent',
    ]);
  });

  it('count every association judged, and those refused', () => {
    expect(after(operation({ operation: 'A-ASSOCIATE' }), operation({ operation: 'A-ASSOCIATE', refusedByAccessRules: true }))).toMatchObject({
      Associations: 2,
      AssociationsRefused: 1,
    });
  });

  it('count every command, failed those that did not succeed (refusals included)', () => {
    expect(
      after(
        operation({ operation: 'C-ECHO', status: 0 }),
        operation({ operation: 'C-ECHO', refusedByAccessRules: true }),
        operation({ operation: 'C-STORE', status: 0, bytes: 1000 }),
        operation({ operation: 'C-STORE', status: 0xb007, bytes: 500 }),
        operation({ operation: 'C-STORE', status: 0x0124, bytes: 700 }),
        operation({ operation: 'C-STORE', refusedByAccessRules: true }),
        operation({ operation: 'C-FIND', status: 0 }),
        operation({ operation: 'C-FIND', status: 0xc000 }),
        operation({ operation: 'C-MOVE', status: 0, instances: 3 }),
        operation({ operation: 'C-MOVE', status: 0xa801, instances: 0 }),
        operation({ operation: 'C-GET', status: 0xb000, instances: 2 }),
      ),
    ).toEqual({
      Associations: 0,
      AssociationsRefused: 0,
      Echo: 2,
      Store: 4,
      StoreFailed: 2,
      Find: 2,
      FindFailed: 1,
      Move: 2,
      MoveFailed: 1,
      Get: 1,
      GetFailed: 0,
      InstancesReceived: 2,
      BytesReceived: 2200,
      InstancesSent: 5,
    });
  });
});

describe('per-minute history', () => {
  const minute = 60_000;
  const now = Date.parse('2026-12-06T10:30:20.000Z');

  it('has one value per minute of the last hour, the current minute last', () => {
    const history = new MinuteHistory();
    history.add(now - 5_000, 'C-STORE', false, now);
    history.add(now - 5_000, 'C-STORE', true, now);
    history.add(now - 2 * minute, 'C-FIND', false, now);
    history.add(now - 59 * minute, 'C-ECHO', false, now);
    history.add(now - 60 * minute, 'C-ECHO', false, now); // out of the hour
    const { operations, failed } = history.series(now);
    expect(operations['C-STORE']).toHaveLength(HISTORY_MINUTES);
    expect(operations['C-STORE'].at(-1)).toBe(2);
    expect(failed.at(-1)).toBe(1);
    expect(operations['C-FIND'].at(-3)).toBe(1);
    expect(operations['C-ECHO'][0]).toBe(1);
    expect(operations['C-ECHO'].reduce((a, b) => a + b)).toBe(1);
  });

  it('lets minutes older than an hour go', () => {
    const history = new MinuteHistory();
    history.add(now, 'C-GET', false, now);
    const later = now + 61 * minute;
    history.add(later, 'C-GET', false, later);
    expect(history.series(later).operations['C-GET'].reduce((a, b) => a + b)).toBe(1);
  });
});

describe('established connections (/proc/net/tcp)', () => {
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000:10F3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:10F3 0100007F:A001 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1',
    '   2: 0100007F:10F3 0100007F:A002 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1',
    '   3: 0100007F:A003 0100007F:10F3 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 20 4 30 10 -1',
    '   4: 0100007F:10F3 0100007F:A004 06 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 20 4 30 10 -1',
    '',
  ].join('\n');
  const tcp6 = [
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000000000000000000001000000:10F4 00000000000000000000000001000000:B001 01 00000000:00000000 00:00000000 00000000     0        0 6 1 0000000000000000 20 4 30 10 -1',
    '',
  ].join('\n');

  it('counts the ESTABLISHED ones whose local port is asked for, IPv4 and IPv6', async () => {
    const read = async (path: string) => (path.endsWith('6') ? tcp6 : tcp);
    const counts = await establishedConnections([0x10f3, 0x10f4, 4000], read);
    expect(Object.fromEntries(counts)).toEqual({ [0x10f3]: 2, [0x10f4]: 1, 4000: 0 });
  });

  it('counts nothing when /proc cannot be read', async () => {
    const counts = await establishedConnections([104], async () => {
      throw new Error('ENOENT');
    });
    expect(Object.fromEntries(counts)).toEqual({ 104: 0 });
  });

  it('reads this process\'s own connections', async () => {
    const { createServer, connect } = await import('node:net');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const client = connect(port, '127.0.0.1');
    await new Promise((resolve) => server.once('connection', resolve));
    try {
      expect((await establishedConnections([port])).get(port)).toBe(1);
    } finally {
      client.destroy();
      server.close();
    }
  });
});

describe('Activity', () => {
  const servers = [tenant(0, 'HOSPITAL_A', 4243), tenant(1, 'HOSPITAL_B', 4244)];

  function configured(options: { audit?: string; connections?: Map<number, number> } = {}) {
    const activity = new Activity({
      now: () => Date.parse('2026-12-06T10:00:30.000Z'),
      connections: async () => options.connections ?? new Map(),
    });
    activity.configure(servers, { auditLog: options.audit === undefined ? undefined : { path: options.audit }, metricsEnabled: true }, silentLog);
    return activity;
  }

  it('shows every tenant "Stopped", with zero counters, until its server reports', async () => {
    const statuses = await configured().tenants();
    expect(statuses.map((status) => [status.AET, status.State, status.Error, status.ActiveAssociations])).toEqual([
      ['HOSPITAL_A', 'Stopped', null, 0],
      ['HOSPITAL_B', 'Stopped', null, 0],
    ]);
    expect(Object.values(statuses[0]!.Counters).every((value) => value === 0)).toBe(true);
  });

  it('follows the servers\' states, with the reason of a failure', async () => {
    const activity = configured({ connections: new Map([[4243, 3], [4244, 5]]) });
    activity.record([
      { type: 'state', tenant: 0, state: 'Listening' },
      { type: 'state', tenant: 1, state: 'Failed', error: 'cannot listen on port 4244 (address in use)' },
    ]);
    const statuses = await activity.tenants();
    expect(statuses[0]).toMatchObject({ AET: 'HOSPITAL_A', Port: 4243, Labels: ['hospital_a'], LabelsConstraint: 'All', State: 'Listening', Error: null, ActiveAssociations: 3 });
    // A port that failed may be another process's: its connections are not the tenant's.
    expect(statuses[1]).toMatchObject({ State: 'Failed', Error: 'cannot listen on port 4244 (address in use)', ActiveAssociations: 0 });
    activity.record([{ type: 'state', tenant: 0, state: 'Stopped' }]);
    expect((await activity.tenants())[0]).toMatchObject({ State: 'Stopped', Error: null, ActiveAssociations: 0 });
  });

  it('counts per tenant, keeps the history, and ignores events of unknown servers', async () => {
    const activity = configured();
    const events: ServerEvent[] = [
      operation({ operation: 'C-STORE', status: 0, bytes: 100 }),
      operation({ operation: 'C-STORE', tenant: 1, status: 0x0124, bytes: 50 }),
      operation({ operation: 'C-ECHO', tenant: 7, status: 0 }),
    ];
    activity.record(events);
    const [a, b] = await activity.tenants();
    expect(a!.Counters).toMatchObject({ Store: 1, StoreFailed: 0, InstancesReceived: 1, BytesReceived: 100 });
    expect(b!.Counters).toMatchObject({ Store: 1, StoreFailed: 1, InstancesReceived: 0, BytesReceived: 50 });
    const history = activity.history();
    expect(history).toMatchObject({ Start: '2026-12-06T09:01:00.000Z', MinuteSeconds: 60, Minutes: 60 });
    expect(history.Tenants.map((entry) => entry.AET)).toEqual(['HOSPITAL_A', 'HOSPITAL_B']);
    expect(history.Tenants[1]!.Operations['C-STORE'].at(-1)).toBe(1);
    expect(history.Tenants[1]!.Failed.at(-1)).toBe(1);
  });

  it('feeds the metrics', async () => {
    const activity = configured();
    activity.record([
      { type: 'state', tenant: 0, state: 'Listening' },
      operation({ operation: 'C-FIND', status: 0 }),
      { type: 'timeout', tenant: 1, kind: 'find' },
    ]);
    const text = await activity.metrics!.text();
    expect(text).toContain('multitenant_dicom_requests_total{tenant="HOSPITAL_A",operation="C-FIND",outcome="success"} 1');
    expect(text).toContain('multitenant_dicom_javascript_timeouts_total{tenant="HOSPITAL_B"} 1');
    expect(text).toContain('multitenant_dicom_listening{tenant="HOSPITAL_A"} 1');
  });

  it('writes the audit trail when configured, and has none otherwise', async () => {
    expect(configured().audit).toBeUndefined();
    const path = join(directory, 'activity-audit.jsonl');
    const activity = configured({ audit: path });
    activity.record([operation({ operation: 'C-MOVE', status: 0x0124, destination: 'ELSEWHERE', query: [] })]);
    await activity.audit!.settled();
    const line = JSON.parse(readFileSync(path, 'utf8'));
    expect(line).toMatchObject({ Tenant: 'HOSPITAL_A', Operation: 'C-MOVE', EventID: 110113, Outcome: 'Refused', Status: '0x0124', Destination: 'ELSEWHERE' });
    await activity.audit!.close();
  });

  it('records the patients and studies a C-FIND answered, kept on this side under the key its report names, once', async () => {
    const path = join(directory, 'activity-audited.jsonl');
    const activity = configured({ audit: path });
    const key = activity.keepAudited({ patientIds: ['P1', 'Ünïcode'], studyInstanceUids: ['1.2.3'] });
    const find = operation({ operation: 'C-FIND', status: 0, query: [], auditedKey: key, instances: 2 });
    activity.record([find, find]);
    await activity.audit!.settled();
    const lines = readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((line) => [line.PatientIDs, line.StudyInstanceUIDs])).toEqual([
      [['P1', 'Ünïcode'], ['1.2.3']],
      [[], []],
    ]);
    await activity.audit!.close();
  });

  it('keeps at most MAX_KEPT_AUDITED answers: the oldest go', async () => {
    const path = join(directory, 'activity-audited-oldest.jsonl');
    const activity = configured({ audit: path });
    const keys = Array.from({ length: MAX_KEPT_AUDITED + 1 }, (_, index) => activity.keepAudited({ patientIds: [`P${index}`], studyInstanceUids: [] }));
    activity.record([keys[0]!, keys[1]!, keys.at(-1)!].map((auditedKey) => operation({ operation: 'C-FIND', status: 0, query: [], auditedKey })));
    await activity.audit!.settled();
    const lines = readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((line) => line.PatientIDs)).toEqual([[], ['P1'], [`P${MAX_KEPT_AUDITED}`]]);
    await activity.audit!.close();
  });

  it('serves the tenants added and deleted through REST: a kept tenant keeps its counters, a deleted one leaves the metrics', async () => {
    const activity = configured();
    activity.record([operation({ operation: 'C-ECHO', tenant: 1, status: 0 })]);
    const clinic = tenant(2, 'CLINIC_É', 4300);
    activity.serve([...servers, clinic], [
      { index: 1, state: 'Listening' },
      { index: 2, state: 'Failed', error: 'cannot listen on port 4300' },
    ]);
    activity.record([operation({ operation: 'C-ECHO', tenant: 2, status: 0 })]);
    let statuses = await activity.tenants();
    expect(statuses.map((status) => [status.AET, status.State, status.Counters.Echo])).toEqual([
      ['HOSPITAL_A', 'Stopped', 0],
      ['HOSPITAL_B', 'Listening', 1],
      ['CLINIC_É', 'Failed', 1],
    ]);
    expect(await activity.metrics!.text()).toContain('multitenant_dicom_requests_total{tenant="CLINIC_É",operation="C-ECHO",outcome="success"} 1');

    activity.serve(servers, [{ index: 0, state: 'Listening' }, { index: 1, state: 'Listening' }]);
    activity.record([operation({ operation: 'C-ECHO', tenant: 2, status: 0 })]); // its last association, after the deletion
    statuses = await activity.tenants();
    expect(statuses.map((status) => [status.AET, status.State, status.Counters.Echo])).toEqual([
      ['HOSPITAL_A', 'Listening', 0],
      ['HOSPITAL_B', 'Listening', 1],
    ]);
    expect(await activity.metrics!.text()).not.toContain('CLINIC_É');
  });

  it('audits a tenant created, changed or deleted through REST', async () => {
    const path = join(directory, 'activity-tenant-changes.jsonl');
    const activity = configured({ audit: path });
    const clinic = { ...tenant(2, 'CLINIC_É', 4300), labels: ['clinic', 'shared'], labelsConstraint: 'Any' as const };
    activity.tenantChanged(clinic, 'TENANT-CREATED');
    activity.tenantChanged({ ...clinic, port: 4301 }, 'TENANT-CHANGED');
    activity.tenantChanged({ ...clinic, port: 4301 }, 'TENANT-DELETED');
    await activity.audit!.settled();
    const lines = readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(lines).toEqual([
      { Time: '2026-12-06T10:00:30.000Z', Tenant: 'CLINIC_É', Operation: 'TENANT-CREATED', EventID: 110113, Outcome: 'Success', Status: null, Port: 4300, Labels: ['clinic', 'shared'], LabelsConstraint: 'Any' },
      { Time: '2026-12-06T10:00:30.000Z', Tenant: 'CLINIC_É', Operation: 'TENANT-CHANGED', EventID: 110113, Outcome: 'Success', Status: null, Port: 4301, Labels: ['clinic', 'shared'], LabelsConstraint: 'Any' },
      { Time: '2026-12-06T10:00:30.000Z', Tenant: 'CLINIC_É', Operation: 'TENANT-DELETED', EventID: 110113, Outcome: 'Success', Status: null, Port: 4301, Labels: ['clinic', 'shared'], LabelsConstraint: 'Any' },
    ]);
    await activity.audit!.close();
  });
});
