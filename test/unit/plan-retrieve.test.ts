// C-GET and C-MOVE through a tenant over a fake Orthanc (test/support/fake-orthanc.ts):
// planRetrieve (src/move.ts) decides which instances are sent (exact keys, UID lists,
// AccessionNumber, entitlement levels), to which destination, and how.
import { beforeEach, describe, expect, it } from 'vitest';
import type { RetrievePlan } from '../../src/bridge.js';
import { readDicomOptions, type DicomOptions, type TenantConfig } from '../../src/configuration.js';
import { orthancId, Tags } from '../../src/dicom.js';
import { MoveStatus, planRetrieve } from '../../src/move.js';
import { Orthanc } from '../../src/orthanc.js';
import type { QueryElement } from '../../src/query.js';
import { tenantConfig } from '../support/tenant-config.js';
import { FakeOrthanc, TAG, vrOf, type InstanceTags, type TagName } from '../support/fake-orthanc.js';

const tenant = tenantConfig;
const A = tenant(0, ['a'], { labelsStoreLevels: ['Patient', 'Study', 'Series', 'Instance'] });
const B = tenant(1, ['b']);

let fake: FakeOrthanc;
let orthanc: Orthanc;

beforeEach(() => {
  fake = new FakeOrthanc();
  orthanc = Orthanc.connect(fake.bridge);
});

function instance(patient: string, study: string, series: string, sop: string, more: InstanceTags = {}): InstanceTags {
  return { PatientID: patient, StudyInstanceUID: study, SeriesInstanceUID: series, SOPInstanceUID: sop, ...more };
}

/** Stores the instance and gives its Orthanc identifier. */
function stored(through: TenantConfig | undefined, tags: InstanceTags): string {
  return (through === undefined ? fake.store(tags) : fake.storeThrough(through, tags)).Instance;
}

function identifier(level: string | null, keys: Partial<Record<TagName, string>>): QueryElement[] {
  const elements: QueryElement[] = level === null ? [] : [{ tag: Tags.QueryRetrieveLevel, vr: 'CS', value: level }];
  for (const [name, value] of Object.entries(keys)) elements.push({ tag: TAG[name as TagName], vr: vrOf(TAG[name as TagName]), value });
  return elements;
}

const caller = { remoteAet: 'VIEWER', remoteIp: '127.0.0.1', calledAet: 'TENANT_0', originatorMessageId: 7 };

function cget(through: TenantConfig, level: string | null, keys: Partial<Record<TagName, string>>, options: DicomOptions = readDicomOptions({})) {
  return planRetrieve(orthanc, through, options, { ...caller, request: 'Get', destinationAet: '', query: identifier(level, keys) });
}

function cmove(through: TenantConfig, destinationAet: string, keys: Partial<Record<TagName, string>>, options: DicomOptions = readDicomOptions({})) {
  return planRetrieve(orthanc, through, options, { ...caller, request: 'Move', destinationAet, query: identifier('STUDY', keys) });
}

function instancesOf(plan: RetrievePlan): string[] {
  if ('refusal' in plan) throw new Error(`refused: ${plan.reason}`);
  return plan.instances;
}

describe('the instances a retrieve sends', () => {
  it('a PatientID "*" is a literal: only the patient whose PatientID is "*", found through /tools/lookup', async () => {
    const star = [stored(A, instance('*', '1.1', '1.1.1', '1.1.1.1')), stored(A, instance('*', '1.2', '1.2.1', '1.2.1.1'))];
    stored(A, instance('P1', '1.3', '1.3.1', '1.3.1.1'));
    stored(A, instance('P2', '1.4', '1.4.1', '1.4.1.1'));

    expect(instancesOf(await cget(A, 'PATIENT', { PatientID: '*' }))).toEqual(star);
    expect(fake.calls).toContainEqual({ method: 'POST', uri: '/tools/lookup', body: '*' });
    expect(fake.constraintValues(), 'no /tools/find with "*"').not.toContain('*');
  });

  it('a PatientID with "?" or "\\" is a literal too', async () => {
    const question = stored(A, instance('P?', '2.1', '2.1.1', '2.1.1.1'));
    stored(A, instance('P1\\P2', '2.2', '2.2.1', '2.2.1.1'));
    const p1 = stored(A, instance('P1', '2.3', '2.3.1', '2.3.1.1'));
    stored(A, instance('PX', '2.4', '2.4.1', '2.4.1.1'));

    expect(instancesOf(await cget(A, 'PATIENT', { PatientID: 'P?' })), 'PatientID "P?"').toEqual([question]);
    // A list in the request names each of its values: "P1\P2" is P1 and P2, never the patient "P1\P2".
    expect(instancesOf(await cget(A, 'PATIENT', { PatientID: 'P1\\P2' })), 'PatientID "P1\\P2"').toEqual([p1]);
    expect(fake.constraintValues()).not.toContain('P?');
  });

  it('a key names the resources whose value equals it exactly, though /tools/find matches without case', async () => {
    stored(A, instance('P1', '2.5', '2.5.1', '2.5.1.1'));

    expect(instancesOf(await cget(A, 'PATIENT', { PatientID: 'p1' }))).toEqual([]);
    expect(fake.summary()).toContain('find Patient {"0010,0020":"p1"} All:a');
  });

  it('a literal key is kept only under the tenant\'s constraint', async () => {
    stored(B, instance('*', '3.1', '3.1.1', '3.1.1.1'));

    expect(instancesOf(await cget(A, 'PATIENT', { PatientID: '*' }))).toEqual([]);
  });

  it('a literal StudyInstanceUID of another tenant\'s study, found through /tools/lookup, sends nothing', async () => {
    stored(B, instance('P3', '3.*', '3.*.1', '3.*.1.1'));
    stored(A, instance('P3', '3.2', '3.2.1', '3.2.1.1'));

    expect(instancesOf(await cget(A, 'STUDY', { StudyInstanceUID: '3.*' }))).toEqual([]);
    expect(fake.calls).toContainEqual({ method: 'POST', uri: '/tools/lookup', body: '3.*' });
  });

  it('a UID list sends the instances of each study named, once', async () => {
    const first = [stored(A, instance('P1', '4.1', '4.1.1', '4.1.1.1')), stored(A, instance('P1', '4.1', '4.1.1', '4.1.1.2'))];
    const second = stored(A, instance('P2', '4.2', '4.2.1', '4.2.1.1'));
    stored(A, instance('P3', '4.3', '4.3.1', '4.3.1.1'));

    expect(instancesOf(await cget(A, 'STUDY', { StudyInstanceUID: '4.1\\4.2\\4.1\\9.9' })).sort()).toEqual([...first, second].sort());
  });

  it('sends only the tenant\'s instances of a study it shares with another sender', async () => {
    stored(B, instance('P1', '5.1', '5.1.1', '5.1.1.1'));
    const own = stored(A, instance('P1', '5.1', '5.1.2', '5.1.2.1'));

    expect(instancesOf(await cget(A, 'STUDY', { StudyInstanceUID: '5.1' }))).toEqual([own]);
    expect(instancesOf(await cget(B, 'SERIES', { SeriesInstanceUID: '5.1.2' })), 'B names A\'s series').toEqual([]);
  });

  it('an AccessionNumber sends only the instances whose own file has it', async () => {
    // Orthanc keeps the study's AccessionNumber from its first instance: ACC1.
    const withAcc1 = stored(A, instance('P1', '6.1', '6.1.1', '6.1.1.1', { AccessionNumber: 'ACC1' }));
    stored(A, instance('P1', '6.1', '6.1.1', '6.1.1.2', { AccessionNumber: 'ACC2' }));
    stored(B, instance('P1', '6.1', '6.1.2', '6.1.2.1', { AccessionNumber: 'ACC1' }));

    expect(instancesOf(await cget(A, 'STUDY', { AccessionNumber: 'ACC1', StudyInstanceUID: '6.1' }))).toEqual([withAcc1]);
    expect(instancesOf(await cget(A, 'STUDY', { AccessionNumber: 'ACC2' })), 'the study\'s value in Orthanc is ACC1').toEqual([]);
  });

  it('an AccessionNumber with "*" is a literal', async () => {
    const literal = stored(A, instance('P1', '7.1', '7.1.1', '7.1.1.1', { AccessionNumber: 'ACC*' }));
    stored(A, instance('P2', '7.2', '7.2.1', '7.2.1.1', { AccessionNumber: 'ACC1' }));

    expect(instancesOf(await cget(A, 'STUDY', { AccessionNumber: 'ACC*' }))).toEqual([literal]);
  });

  it('without a QueryRetrieveLevel, the deepest unique key decides', async () => {
    const wanted = stored(A, instance('P1', '8.1', '8.1.1', '8.1.1.1'));
    stored(A, instance('P1', '8.1', '8.1.1', '8.1.1.2'));

    expect(instancesOf(await cget(A, null, { StudyInstanceUID: '8.1', SOPInstanceUID: '8.1.1.1' }))).toEqual([wanted]);
  });

  it('matches nothing, and asks nothing, for an empty key', async () => {
    stored(A, instance('P1', '9.1', '9.1.1', '9.1.1.1'));

    expect(instancesOf(await cget(A, 'SERIES', { SeriesInstanceUID: '' }))).toEqual([]);
    expect(fake.summary()).toEqual(['GET /modalities?expand']);
  });
});

describe('entitlement levels', () => {
  it('at the series (LabelsStoreLevels Study, Series): every instance of the tenant\'s series, whoever sent it', async () => {
    const bySeries = tenant(0, ['a'], { labelsStoreLevels: ['Study', 'Series'] });
    const own = stored(bySeries, instance('P1', '10.1', '10.1.1', '10.1.1.1'));
    // Another sender's instance in the tenant's series, and another sender's series in its study.
    const intoOwnSeries = stored(B, instance('P1', '10.1', '10.1.1', '10.1.1.2'));
    stored(B, instance('P1', '10.1', '10.1.2', '10.1.2.1'));

    expect(instancesOf(await cget(bySeries, 'STUDY', { StudyInstanceUID: '10.1' }))).toEqual([own, intoOwnSeries]);
    expect(fake.summary()).toContain('find Series {"0020,000d":"10.1"} All:a');
  });

  it('above the query level (LabelsStoreLevels Study, a "None" tenant): only the series whose study is the tenant\'s', async () => {
    const notA = tenant(2, ['a'], { labelsConstraint: 'None', labelsStoreLevels: ['Study'] });
    stored(tenant(0, ['a'], { labelsStoreLevels: ['Study'] }), instance('P1', '11.1', '11.1.1', '11.1.1.1'));
    const others = stored(undefined, instance('P2', '11.2', '11.2.1', '11.2.1.1'));

    expect(instancesOf(await cget(notA, 'SERIES', { SeriesInstanceUID: '11.1.1' })), 'a series of a study labelled "a"').toEqual([]);
    expect(instancesOf(await cget(notA, 'SERIES', { SeriesInstanceUID: '11.2.1' })), 'a series of an unlabelled study').toEqual([others]);
    expect(fake.summary()).toContain(`GET /series/${orthancId('P2', '11.2', '11.2.1')}/study`);
  });
});

describe('the destination of a C-MOVE', () => {
  const modalities = {
    zeta: { AET: 'DEST', Host: '10.0.0.2', Port: 104 },
    alpha: { AET: 'dest', Host: '10.0.0.1', Port: 104, AllowTranscoding: false },
  };

  beforeEach(() => {
    fake.modalities = modalities;
    stored(A, instance('P1', '12.1', '12.1.1', '12.1.1.1'));
  });

  it('an AET that no modality has: 0xA801, and nothing is looked up', async () => {
    const plan = await cmove(A, 'NOBODY', { StudyInstanceUID: '12.1' });

    expect(plan).toEqual({ refusal: MoveStatus.DestinationUnknown, reason: 'the move destination "NOBODY" is not in DicomModalities' });
    expect(fake.summary()).toEqual(['GET /modalities?expand']);
  });

  it('is the first modality with the AET in the order of Orthanc\'s std::map, compared as StrictAetComparison says', async () => {
    const plan = await cmove(A, 'DEST', { StudyInstanceUID: '12.1' });
    expect(plan).toEqual({
      instances: [orthancId('P1', '12.1', '12.1.1', '12.1.1.1')],
      allowTranscoding: false,
      destination: modalities.alpha,
      scuTimeoutSeconds: 10,
      studies: [{ patientId: 'P1', studyInstanceUid: '12.1', instances: 1 }],
    });

    const strict = await cmove(A, 'DEST', { StudyInstanceUID: '12.1' }, readDicomOptions({ StrictAetComparison: true }));
    expect(strict).toMatchObject({ destination: modalities.zeta, allowTranscoding: true });
  });

  it('not one of AllowedMoveDestinations: 0x0124, even when a later modality with the AET is', async () => {
    const restricted = { ...A, allowedMoveDestinations: ['zeta'] };

    const plan = await cmove(restricted, 'DEST', { StudyInstanceUID: '12.1' });

    expect(plan).toMatchObject({ refusal: MoveStatus.NotAuthorized });
    expect(fake.finds()).toEqual([]);
    expect(await cmove(restricted, 'DEST', { StudyInstanceUID: '12.1' }, readDicomOptions({ StrictAetComparison: true }))).toMatchObject({
      destination: modalities.zeta,
    });
  });

  it('with SynchronousCMove false, is handed to Orthanc\'s job engine, with the tenant as local AET', async () => {
    const asynchronous = readDicomOptions({ SynchronousCMove: false });

    const plan = await cmove(A, 'DEST', { StudyInstanceUID: '12.1' }, asynchronous);

    const instances = [orthancId('P1', '12.1', '12.1.1', '12.1.1.1')];
    expect(plan).toEqual({ instances, studies: [{ patientId: 'P1', studyInstanceUid: '12.1', instances: 1 }], allowTranscoding: false, submittedAsJob: true });
    expect(fake.jobs).toEqual([
      { modality: 'alpha', body: { Resources: instances, Asynchronous: true, LocalAet: 'TENANT_0', MoveOriginatorAet: 'VIEWER', MoveOriginatorID: 7 } },
    ]);
  });

  it('with SynchronousCMove false and nothing to send, posts no job', async () => {
    const plan = await cmove(A, 'DEST', { StudyInstanceUID: '99.9' }, readDicomOptions({ SynchronousCMove: false }));

    expect(plan).toEqual({ instances: [], studies: [], allowTranscoding: false, destination: modalities.alpha, scuTimeoutSeconds: 10 });
    expect(fake.jobs).toEqual([]);
  });
});

describe('transcoding in a C-GET', () => {
  beforeEach(() => {
    fake.modalities = { viewer: { AET: 'VIEWER', Host: '127.0.0.1', Port: 104, AllowTranscoding: false }, other: { AET: 'OTHER', Host: '127.0.0.1', Port: 104 } };
  });

  it('is allowed unless the caller\'s modality forbids it, or TranscodeDicomProtocol is false', async () => {
    expect(await cget(A, 'STUDY', { StudyInstanceUID: '1' }), 'the caller forbids it').toMatchObject({ allowTranscoding: false });
    fake.modalities = { other: { AET: 'OTHER', Host: '127.0.0.1', Port: 104 } };
    expect(await cget(A, 'STUDY', { StudyInstanceUID: '1' }), 'a caller that is no modality').toMatchObject({ allowTranscoding: true });
    expect(await cget(A, 'STUDY', { StudyInstanceUID: '1' }, readDicomOptions({ TranscodeDicomProtocol: false }))).toMatchObject({ allowTranscoding: false });
  });
});
