import fs, { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  AUDIT_DEFAULT_LIMIT,
  AUDIT_RETRY_MS,
  AuditParameterError,
  AuditTrail,
  auditEntry,
  matches,
  parseAuditQuery,
  readAuditTrail,
  statusText,
  tenantChangeEntry,
  type AuditEntry,
} from '../../src/audit.js';
import { eventIdOf, outcomeOf, type OperationEvent } from '../../src/outcomes.js';

const directory = mkdtempSync(join(tmpdir(), 'audit-test-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));
let fileCount = 0;
const newPath = () => join(directory, `audit-${++fileCount}.jsonl`);

const AT = Date.parse('2026-12-06T10:00:00.123Z');

function operation(fields: Partial<OperationEvent> & Pick<OperationEvent, 'operation'>): OperationEvent {
  return { type: 'operation', tenant: 0, at: AT, durationMs: 12.3456, callingAet: 'MODALITY', calledAet: 'HOSPITAL_A', peer: '10.0.0.7', ...fields };
}

const entryOf = (event: OperationEvent, aet = 'HOSPITAL_A') => auditEntry(aet, event, outcomeOf(event), eventIdOf(event));

const COMMON = ['Time', 'Tenant', 'Operation', 'EventID', 'Outcome', 'Status', 'CallingAET', 'CalledAET', 'PeerAddress'];

const findQuery = [
  { tag: '0008,0052', vr: 'CS', name: 'QueryRetrieveLevel', value: 'STUDY' },
  { tag: '0010,0010', vr: 'PN', name: 'PatientName', value: 'DOE*' },
  { tag: '0020,000d', vr: 'UI', name: 'StudyInstanceUID', value: null },
  { tag: '0009,0010', vr: 'LO', value: 'PRIVATE' },
];

describe('audit entries', () => {
  it('have the common fields, Time in ISO 8601 UTC with milliseconds, Status in four hex digits', () => {
    expect(entryOf(operation({ operation: 'C-ECHO', status: 0 }))).toEqual({
      Time: '2026-12-06T10:00:00.123Z',
      Tenant: 'HOSPITAL_A',
      Operation: 'C-ECHO',
      EventID: 110114,
      Outcome: 'Success',
      Status: '0x0000',
      CallingAET: 'MODALITY',
      CalledAET: 'HOSPITAL_A',
      PeerAddress: '10.0.0.7',
      DurationMs: 12.346,
    });
    expect([statusText(0x0124), statusText(0xa801), statusText(0xff00), statusText(undefined)]).toEqual(['0x0124', '0xA801', '0xFF00', null]);
  });

  it('of an association have a null Status', () => {
    const entry = entryOf(operation({ operation: 'A-ASSOCIATE', refusedByAccessRules: true }));
    expect(Object.keys(entry)).toEqual([...COMMON, 'DurationMs']);
    expect(entry).toMatchObject({ Operation: 'A-ASSOCIATE', EventID: 110114, Outcome: 'Refused', Status: null });
  });

  it('of a C-STORE name the instance, its patient and study', () => {
    const entry = entryOf(operation({ operation: 'C-STORE', status: 0x0124, sopInstanceUid: '1.2.3.4', patientIds: ['P1'], studyInstanceUids: ['1.2.3'], bytes: 100 }));
    expect(Object.keys(entry)).toEqual([...COMMON, 'PatientIDs', 'StudyInstanceUIDs', 'SOPInstanceUID', 'DurationMs']);
    expect(entry).toMatchObject({ EventID: 110113, Outcome: 'Refused', Status: '0x0124', PatientIDs: ['P1'], StudyInstanceUIDs: ['1.2.3'], SOPInstanceUID: '1.2.3.4' });
  });

  it('of a C-FIND have the level and the keys as received, by keyword or tag', () => {
    const entry = entryOf(operation({ operation: 'C-FIND', status: 0, query: findQuery, instances: 0 }));
    expect(Object.keys(entry)).toEqual([...COMMON, 'Level', 'Query', 'PatientIDs', 'StudyInstanceUIDs', 'DurationMs']);
    expect(entry).toMatchObject({
      EventID: 110112,
      Level: 'STUDY',
      Query: { QueryRetrieveLevel: 'STUDY', PatientName: 'DOE*', StudyInstanceUID: null, '0009,0010': 'PRIVATE' },
      PatientIDs: [],
      StudyInstanceUIDs: [],
    });
    expect(Object.keys(entry.Query!)).toEqual(['QueryRetrieveLevel', 'PatientName', 'StudyInstanceUID', '0009,0010']);
  });

  it('of a C-MOVE and a C-GET count the instances sent; a C-MOVE names its destination', () => {
    const move = entryOf(operation({ operation: 'C-MOVE', status: 0, query: findQuery, instances: 3, destination: 'PACS', patientIds: ['P1'], studyInstanceUids: ['1.2'] }));
    expect(Object.keys(move)).toEqual([...COMMON, 'Level', 'Query', 'PatientIDs', 'StudyInstanceUIDs', 'Instances', 'Destination', 'DurationMs']);
    expect(move).toMatchObject({ EventID: 110104, Instances: 3, Destination: 'PACS' });
    const get = entryOf(operation({ operation: 'C-GET', status: 0xb000, query: findQuery, instances: 1 }));
    expect(Object.keys(get)).toEqual([...COMMON, 'Level', 'Query', 'PatientIDs', 'StudyInstanceUIDs', 'Instances', 'DurationMs']);
    expect(get).toMatchObject({ Outcome: 'Success', Status: '0xB000' });
  });

  it('of a command refused before it was read have null for what is unknown', () => {
    expect(entryOf(operation({ operation: 'C-FIND', refusedByAccessRules: true }))).toMatchObject({ EventID: 110114, Outcome: 'Refused', Status: null, Level: null, Query: null });
    expect(entryOf(operation({ operation: 'C-STORE', refusedByAccessRules: true }))).toMatchObject({ SOPInstanceUID: null, PatientIDs: [] });
  });
});

function recordingHooks() {
  const lost = new Map<string, number>();
  const errors: string[] = [];
  const warnings: string[] = [];
  return {
    lost,
    errors,
    warnings,
    hooks: {
      lost: (tenant: string, count: number) => lost.set(tenant, (lost.get(tenant) ?? 0) + count),
      error: (message: string) => errors.push(message),
      warning: (message: string) => warnings.push(message),
    },
  };
}

async function poll(condition: () => boolean, what: string): Promise<void> {
  await expect.poll(condition, { timeout: 10_000, message: what }).toBe(true);
}

describe('the audit trail file', () => {
  const entries = [
    entryOf(operation({ operation: 'A-ASSOCIATE' })),
    entryOf(operation({ operation: 'C-FIND', status: 0, query: findQuery })),
    entryOf(operation({ operation: 'C-STORE', status: 0, sopInstanceUid: '1.2.3', patientIds: ['PATIENT é'], studyInstanceUids: ['1.2'] }), 'HOSPITAL_B'),
  ];

  it('gets one JSON object per line, exactly the entry (no level, time, pid, hostname or msg), appended', async () => {
    const path = newPath();
    writeFileSync(path, '{"Time":"2026-01-01T00:00:00.000Z","Tenant":"OLD"}\n');
    const { hooks, errors } = recordingHooks();
    const trail = new AuditTrail(path, hooks);
    for (const entry of entries) trail.write(entry);
    await trail.settled();
    await trail.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[4]).toBe('');
    expect(lines.slice(1, 4).map((line) => JSON.parse(line))).toEqual(entries);
    expect(lines[1]!.startsWith('{"Time":"2026-12-06T10:00:00.123Z","Tenant":"HOSPITAL_A","Operation":"A-ASSOCIATE",')).toBe(true);
    expect(errors).toEqual([]);
  });

  it('gets a batch of entries in one write of the file, each on its line', async () => {
    const path = newPath();
    const { hooks, errors } = recordingHooks();
    const trail = new AuditTrail(path, hooks);
    trail.write(entries[0]!);
    await trail.settled(); // open, and idle
    const writes = vi.spyOn(fs, 'write');
    try {
      trail.writeAll(entries);
      await trail.settled();
      expect(writes).toHaveBeenCalledTimes(1);
    } finally {
      writes.mockRestore();
    }
    await trail.close();
    expect(readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line))).toEqual([entries[0], ...entries]);
    expect(errors).toEqual([]);
  });

  it.skipIf(!existsSync('/dev/full'))('loses every line of a batch it cannot write, counted per tenant', async () => {
    const { hooks, lost, errors } = recordingHooks();
    const trail = new AuditTrail('/dev/full', hooks);
    trail.writeAll(entries);
    await poll(() => (lost.get('HOSPITAL_A') ?? 0) + (lost.get('HOSPITAL_B') ?? 0) === 3, 'the three lost lines');
    expect(Object.fromEntries(lost)).toEqual({ HOSPITAL_A: 2, HOSPITAL_B: 1 });
    expect(errors).toHaveLength(1);
    await trail.close();
  });

  it('that cannot be opened (its folder is a file) loses the events, counts them per tenant, logs once per cause', async () => {
    const parent = join(directory, 'a-file');
    writeFileSync(parent, 'not a folder');
    const path = join(parent, 'audit.jsonl');
    const { hooks, lost, errors } = recordingHooks();
    let now = 0;
    const trail = new AuditTrail(path, hooks, () => now);
    await poll(() => errors.length === 1, 'the error of the open');
    for (let i = 0; i < 5; i++) trail.write(entries[i % 3]!); // within the retry delay: lost at once
    now += AUDIT_RETRY_MS;
    trail.write(entries[2]!); // opened again: fails again, same cause
    await trail.settled();
    await poll(() => (lost.get('HOSPITAL_B') ?? 0) === 2, 'the lost events of HOSPITAL_B');
    expect(Object.fromEntries(lost)).toEqual({ HOSPITAL_A: 4, HOSPITAL_B: 2 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^multitenant-dicom: cannot write the audit trail ${path}: ENOTDIR`));
    await trail.close();
  });

  it('writes again once it can, and says so', async () => {
    const parent = join(directory, 'later-a-folder');
    writeFileSync(parent, 'not a folder yet');
    const path = join(parent, 'audit.jsonl');
    const { hooks, lost, errors, warnings } = recordingHooks();
    let now = 0;
    const trail = new AuditTrail(path, hooks, () => now);
    await poll(() => errors.length === 1, 'the error of the open');
    trail.write(entries[0]!);
    rmSync(parent);
    mkdirSync(parent);
    now += AUDIT_RETRY_MS;
    trail.write(entries[1]!);
    await trail.settled();
    await poll(() => warnings.length === 1, 'the recovery warning');
    expect(warnings[0]).toBe(`multitenant-dicom: the audit trail ${path} is written again; 1 audit event(s) could not be written before`);
    expect(Object.fromEntries(lost)).toEqual({ HOSPITAL_A: 1 });
    expect(readFileSync(path, 'utf8').trim().split('\n').map((line) => JSON.parse(line))).toEqual([entries[1]]);
    await trail.close();
  });

  it.skipIf(!existsSync('/dev/full'))('on a full disk (/dev/full: ENOSPC) loses and counts the events, logs once, never throws', async () => {
    const { hooks, lost, errors } = recordingHooks();
    let now = 0;
    const trail = new AuditTrail('/dev/full', hooks, () => now);
    for (let round = 0; round < 3; round++) {
      trail.write(entries[0]!);
      trail.write(entries[1]!);
      await trail.settled();
      now += AUDIT_RETRY_MS;
    }
    await poll(() => lost.get('HOSPITAL_A') === 6, 'six lost events');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/cannot write the audit trail \/dev\/full: ENOSPC/);
    await trail.close();
  });
});

describe('reading the audit trail', () => {
  function entry(index: number, fields: Partial<AuditEntry> = {}): AuditEntry {
    return {
      Time: new Date(AT + index * 1000).toISOString(),
      Tenant: index % 2 === 0 ? 'HOSPITAL_A' : 'HOSPITAL_B',
      Operation: index % 3 === 0 ? 'C-FIND' : 'C-STORE',
      EventID: 110104,
      Outcome: 'Success',
      Status: '0x0000',
      CallingAET: 'M',
      CalledAET: 'HOSPITAL_A',
      PeerAddress: '127.0.0.1',
      PatientIDs: [`P${index % 5}`],
      StudyInstanceUIDs: [],
      DurationMs: 1,
      ...fields,
    };
  }

  // 3,000 entries with padding: several 64 KB chunks, lines across their boundaries.
  const path = newPath();
  const all = Array.from({ length: 3000 }, (_, i) => entry(i, { CallingAET: `M${'x'.repeat(i % 97)}` }));
  writeFileSync(path, all.map((e) => JSON.stringify(e)).join('\n') + '\n');

  it('answers the newest entries that match, oldest first, at most `limit`', async () => {
    expect(await readAuditTrail(path, { limit: 3 })).toEqual(all.slice(-3));
    expect(await readAuditTrail(path, { limit: 10_000 })).toEqual(all);
    expect(await readAuditTrail(path, { limit: 4, tenant: 'HOSPITAL_B', operation: 'C-FIND' })).toEqual(
      all.filter((e) => e.Tenant === 'HOSPITAL_B' && e.Operation === 'C-FIND').slice(-4),
    );
    expect(await readAuditTrail(path, { limit: 10_000, patient: 'P3' })).toEqual(all.filter((e) => e.PatientIDs!.includes('P3')));
  });

  it('keeps since <= Time < until', async () => {
    const since = AT + 100 * 1000;
    const until = AT + 110 * 1000;
    expect(await readAuditTrail(path, { limit: 100, since, until })).toEqual(all.slice(100, 110));
  });

  it('skips lines that are not entries (a line cut short), and reads a file without a final newline', async () => {
    const damaged = newPath();
    writeFileSync(damaged, `${JSON.stringify(all[0])}\n{"Time":"2026-12-06T1\n\n[1]\n${JSON.stringify(all[1])}`);
    expect(await readAuditTrail(damaged, { limit: 10 })).toEqual([all[0], all[1]]);
  });

  it('of a file not written yet is empty', async () => {
    expect(await readAuditTrail(join(directory, 'missing.jsonl'), { limit: 10 })).toEqual([]);
  });

  it('stops at its deadline', async () => {
    await expect(readAuditTrail(path, { limit: 10, patient: 'nobody' }, Date.now() - 1)).rejects.toThrow(/could not be searched in time/);
  });

  it('reads what the trail writes', async () => {
    const written = newPath();
    const trail = new AuditTrail(written, recordingHooks().hooks);
    trail.write(all[0]!);
    await trail.settled();
    appendFileSync(written, ''); // nothing else
    expect(await readAuditTrail(written, { limit: 10 })).toEqual([all[0]]);
    await trail.close();
  });
});

describe('the query of GET /audit', () => {
  it('has defaults', () => {
    expect(parseAuditQuery({})).toEqual({ limit: AUDIT_DEFAULT_LIMIT });
  });

  it('reads every parameter', () => {
    expect(
      parseAuditQuery({
        tenant: 'HOSPITAL_A',
        operation: 'C-FIND',
        since: '2026-12-06T10:00:00Z',
        until: '2026-12-07',
        patient: 'P1',
        limit: '20',
      }),
    ).toEqual({
      tenant: 'HOSPITAL_A',
      operation: 'C-FIND',
      since: Date.parse('2026-12-06T10:00:00Z'),
      until: Date.parse('2026-12-07T00:00:00Z'),
      patient: 'P1',
      limit: 20,
    });
    expect(parseAuditQuery({ since: '2026-12-06T10:00:00.5+01:00' }).since).toBe(Date.parse('2026-12-06T09:00:00.500Z'));
    // "+" of a query string decoded as a space
    expect(parseAuditQuery({ since: '2026-12-06T10:00:00 01:00' }).since).toBe(Date.parse('2026-12-06T09:00:00Z'));
  });

  it('takes the changes of tenants through REST as operations; they name no patient', () => {
    const query = parseAuditQuery({ operation: 'TENANT-DELETED' });
    expect(query.operation).toBe('TENANT-DELETED');
    const change = tenantChangeEntry(
      { index: 2, aet: 'CLINIC', port: 4300, labels: ['c'], labelsConstraint: 'All', labelsStoreLevels: ['Study'], foreignInstances: 'Reject' },
      'TENANT-DELETED',
      Date.parse('2026-12-06T10:00:00Z'),
    );
    expect(matches(change, query)).toBe(true);
    expect(matches(change, parseAuditQuery({ operation: 'TENANT-CREATED' }))).toBe(false);
    expect(matches(change, parseAuditQuery({ patient: 'P1' }))).toBe(false);
  });

  it.each([
    [{ operation: 'C-FOO' }, 'operation'],
    [{ since: 'yesterday' }, 'since'],
    [{ until: '2026-12-06T10:00:00' }, 'until'], // no time zone
    [{ since: '2026-13-06' }, 'since'],
    [{ limit: '0' }, 'limit'],
    [{ limit: '10001' }, 'limit'],
    [{ limit: '5x' }, 'limit'],
    [{ tenant: '' }, 'tenant'],
    [{ patients: 'P1' }, 'patients'],
  ])('rejects %j, naming the parameter', (query, parameter) => {
    let thrown: unknown;
    try {
      parseAuditQuery(query);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AuditParameterError);
    expect((thrown as AuditParameterError).parameter).toBe(parameter);
    expect((thrown as Error).message).toContain(`"${parameter}"`);
  });
});
