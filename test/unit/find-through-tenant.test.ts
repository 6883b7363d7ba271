// C-FIND through a tenant over a fake Orthanc (test/support/fake-orthanc.ts):
// findThroughTenant (src/find.ts) and restrictToEntitled (src/find-entitled.ts), i.e.
// what a tenant is answered on patients that hold only its instances, that also hold
// another sender's, or that held one (marked "multitenant-mixed"), which /tools/find
// calls that costs, and that values /tools/find would read as patterns never become
// constraints.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readDicomOptions, type TenantConfig } from '../../src/configuration.js';
import { orthancId, Tags } from '../../src/dicom.js';
import { findThroughTenant } from '../../src/find.js';
import { MIXED_LABEL, Mixing } from '../../src/mixing.js';
import { FEW_PATIENTS, Orthanc, REQUEST_CONCURRENCY } from '../../src/orthanc.js';
import type { QueryElement } from '../../src/query.js';
import { tenantConfig } from '../support/tenant-config.js';
import { FakeOrthanc, TAG, vrOf, type InstanceTags, type TagName } from '../support/fake-orthanc.js';

const tenant = tenantConfig;
const A = tenant(0, ['a']);
const B = tenant(1, ['b']);
/** A, labelling patients too: PATIENT-level queries see its patients. */
const A_WITH_PATIENTS = tenant(0, ['a'], { labelsStoreLevels: ['Patient', 'Study', 'Series', 'Instance'] });

const options = readDicomOptions({});
const CT = '1.2.840.10008.5.1.4.1.1.2';
const MR = '1.2.840.10008.5.1.4.1.1.4';

let fake: FakeOrthanc;
let orthanc: Orthanc;
let mixing: Mixing;

beforeEach(() => {
  // Mixing checks the patients it is told of 250 ms later: never, here.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  fake = new FakeOrthanc();
  orthanc = Orthanc.connect(fake.bridge);
  mixing = new Mixing(orthanc, { info: () => {}, error: () => {} });
});

afterEach(() => {
  vi.useRealTimers();
});

type Keys = Partial<Record<TagName | keyof typeof Tags, string | null>>;

/** A C-FIND identifier: the level, then the keys by name (null: a return key). */
function identifier(level: string, keys: Keys): QueryElement[] {
  const elements: QueryElement[] = [{ tag: Tags.QueryRetrieveLevel, vr: 'CS', value: level }];
  for (const [name, value] of Object.entries(keys)) {
    const tag = (TAG as Record<string, string>)[name] ?? (Tags as Record<string, string>)[name]!;
    elements.push({ tag, vr: vrOf(tag), value: value ?? null });
  }
  return elements;
}

async function cfind(through: TenantConfig, level: string, keys: Keys, view: Orthanc = orthanc) {
  const { answers, complete } = await findThroughTenant(view, mixing, through, options, identifier(level, keys));
  expect(complete).toBe(true);
  return answers;
}

/** An answer by tag names, without RetrieveAETitle and QueryRetrieveLevel. */
function byName(answer: Record<string, string>): Record<string, string> {
  const names = Object.fromEntries([...Object.entries(TAG), ...Object.entries(Tags)].map(([name, tag]) => [tag, name]));
  return Object.fromEntries(
    Object.entries(answer)
      .filter(([tag]) => tag !== Tags.RetrieveAETitle && tag !== Tags.QueryRetrieveLevel)
      .map(([tag, value]) => [names[tag] ?? tag, value]),
  );
}

function instance(patient: string, study: string, series: string, sop: string, more: InstanceTags = {}): InstanceTags {
  return { PatientID: patient, StudyInstanceUID: study, SeriesInstanceUID: series, SOPInstanceUID: sop, ...more };
}

const B_VALUES = { PatientName: 'B^NAME', StudyDescription: 'B study', AccessionNumber: 'ACC-B', Modality: 'MR', SOPClassUID: MR };
const A_VALUES = { PatientName: 'A^NAME', StudyDescription: 'A study', AccessionNumber: 'ACC-A', Modality: 'CT', SOPClassUID: CT };

/** Study 1.1 of patient P1: B's series stored first (Orthanc keeps its values), then two instances of A in another series. */
function storeSharedStudy(): void {
  fake.storeThrough(B, instance('P1', '1.1', '1.1.1', '1.1.1.1', B_VALUES));
  fake.storeThrough(A, instance('P1', '1.1', '1.1.2', '1.1.2.1', A_VALUES));
  fake.storeThrough(A, instance('P1', '1.1', '1.1.2', '1.1.2.2', A_VALUES));
}

const STUDY_KEYS: Keys = {
  PatientName: null,
  StudyDescription: null,
  AccessionNumber: null,
  NumberOfStudyRelatedSeries: null,
  NumberOfStudyRelatedInstances: null,
  ModalitiesInStudy: null,
  SOPClassesInStudy: null,
};

describe('a patient that holds only the tenant\'s instances', () => {
  it('keeps Orthanc\'s answer, at the cost of the main query, a look at the labels in use (none is the mark) and one query for other senders under the patient', async () => {
    fake.storeThrough(A, instance('P2', '2.1', '2.1.1', '2.1.1.1', A_VALUES));
    fake.storeThrough(A, instance('P2', '2.1', '2.1.2', '2.1.2.1', { ...A_VALUES, Modality: 'US' }));

    const answers = await cfind(A, 'STUDY', { StudyInstanceUID: '2.1', ...STUDY_KEYS });

    expect(answers.map(byName)).toEqual([
      {
        StudyInstanceUID: '2.1',
        PatientName: 'A^NAME',
        StudyDescription: 'A study',
        AccessionNumber: 'ACC-A',
        NumberOfStudyRelatedSeries: '2',
        NumberOfStudyRelatedInstances: '2',
        ModalitiesInStudy: 'CT\\US',
        SOPClassesInStudy: CT,
      },
    ]);
    expect(answers[0]).toMatchObject({ [Tags.RetrieveAETitle]: 'TENANT_0', [Tags.QueryRetrieveLevel]: 'STUDY' });
    expect(fake.summary()).toEqual([
      'GET /system',
      'find Study {"0020,000d":"2.1"} All:a',
      'GET /tools/labels',
      `find Instance {} None:a under:${orthancId('P2')}`,
    ]);
  });

  it('costs a look at the labels in use, then a query for other senders under each of a few patients, or one over the PatientIDs of more', async () => {
    const few = ['P1', 'P2', 'P3'];
    for (const patient of few) fake.storeThrough(A, instance(patient, `${patient}.1`, `${patient}.1.1`, `${patient}.1.1.1`, A_VALUES));

    const answers = await cfind(A, 'STUDY', { StudyInstanceUID: null, PatientID: null });

    expect(answers.map(byName)).toEqual(few.map((patient) => ({ StudyInstanceUID: `${patient}.1`, PatientID: patient })));
    expect(fake.summary().slice(2)).toEqual(['GET /tools/labels', ...few.map((patient) => `find Instance {} None:a under:${orthancId(patient)}`)]);

    const many = Array.from({ length: FEW_PATIENTS + 1 }, (_, index) => `Q${index}`);
    for (const patient of many) fake.storeThrough(A, instance(patient, `${patient}.1`, `${patient}.1.1`, `${patient}.1.1.1`, A_VALUES));
    fake.clearCalls();

    expect(await cfind(A, 'STUDY', { StudyInstanceUID: null, PatientID: 'Q*' })).toHaveLength(many.length);
    expect(fake.summary().slice(1)).toEqual(['GET /tools/labels', `find Instance {"0010,0020":"${many.join('\\\\')}"} None:a`]);
  });
});

describe('what the audit trail is told of a C-FIND', () => {
  beforeEach(() => {
    fake.storeThrough(A, instance('P2', '2.1', '2.1.1', '2.1.1.1', A_VALUES));
    fake.storeThrough(A, instance('P2', '2.2', '2.2.1', '2.2.1.1', A_VALUES));
  });

  it('with an audit trail: the patient and the study of every answer, asked of Orthanc with the main query', async () => {
    const { audited } = await findThroughTenant(orthanc, mixing, A, options, identifier('SERIES', { SeriesInstanceUID: null }), true);

    expect(audited).toEqual({ patientIds: ['P2'], studyInstanceUids: ['2.1', '2.2'] });
    expect(fake.finds()[0]!.RequestedTags).toEqual(expect.arrayContaining([Tags.PatientID, Tags.StudyInstanceUID]));
  });

  it('without one: nothing collected, and the study of each answer is not asked for', async () => {
    const { answers, audited } = await findThroughTenant(orthanc, mixing, A, options, identifier('SERIES', { SeriesInstanceUID: null }), false);

    expect(answers).toHaveLength(2);
    expect(audited).toEqual({ patientIds: [], studyInstanceUids: [] });
    expect(fake.finds()[0]!.RequestedTags).not.toContain(Tags.StudyInstanceUID);
  });
});

describe('a patient that also holds another sender\'s instances', () => {
  it('is answered with the tenant\'s own values and counters at STUDY level', async () => {
    storeSharedStudy();

    const answers = await cfind(A, 'STUDY', { StudyInstanceUID: '1.1', ...STUDY_KEYS });

    expect(answers.map(byName)).toEqual([
      {
        StudyInstanceUID: '1.1',
        PatientName: 'A^NAME',
        StudyDescription: 'A study',
        AccessionNumber: 'ACC-A',
        NumberOfStudyRelatedSeries: '1',
        NumberOfStudyRelatedInstances: '2',
        ModalitiesInStudy: 'CT',
        SOPClassesInStudy: CT,
      },
    ]);
    // The tenant's instances of the study, then the tags of its first one (read for
    // ModalitiesInStudy per series, and for the other values).
    const first = `GET /instances/${orthancId('P1', '1.1', '1.1.2', '1.1.2.1')}/tags?short`;
    expect(fake.summary().slice(2)).toEqual([
      'GET /tools/labels',
      `find Instance {} None:a under:${orthancId('P1')}`,
      'find Instance {"0010,0020":"P1","0020,000d":"1.1"} All:a',
      first,
      first,
    ]);
  });

  it('is answered with the tenant\'s own counters at PATIENT and SERIES level', async () => {
    fake.storeThrough(B, instance('P1', '1.1', '1.1.1', '1.1.1.1', B_VALUES));
    fake.storeThrough(A_WITH_PATIENTS, instance('P1', '1.1', '1.1.1', '1.1.1.2', A_VALUES));
    fake.storeThrough(A_WITH_PATIENTS, instance('P1', '1.2', '1.2.1', '1.2.1.1', A_VALUES));
    fake.storeThrough(B, instance('P1', '1.3', '1.3.1', '1.3.1.1', B_VALUES));

    const patients = await cfind(A_WITH_PATIENTS, 'PATIENT', {
      PatientID: 'P1',
      PatientName: null,
      NumberOfPatientRelatedStudies: null,
      NumberOfPatientRelatedSeries: null,
      NumberOfPatientRelatedInstances: null,
    });
    expect(patients.map(byName)).toEqual([
      { PatientID: 'P1', PatientName: 'A^NAME', NumberOfPatientRelatedStudies: '2', NumberOfPatientRelatedSeries: '2', NumberOfPatientRelatedInstances: '2' },
    ]);

    const series = await cfind(A_WITH_PATIENTS, 'SERIES', { SeriesInstanceUID: '1.1.1', Modality: null, NumberOfSeriesRelatedInstances: null });
    expect(series.map(byName)).toEqual([{ SeriesInstanceUID: '1.1.1', Modality: 'CT', NumberOfSeriesRelatedInstances: '1' }]);
  });

  it('is dropped when the constraint matches only another sender\'s value', async () => {
    storeSharedStudy();

    expect(await cfind(A, 'STUDY', { StudyDescription: 'B study' }), 'StudyDescription of B').toEqual([]);
    expect(await cfind(A, 'STUDY', { AccessionNumber: 'ACC-B', StudyInstanceUID: null }), 'AccessionNumber of B').toEqual([]);
    expect(await cfind(A, 'STUDY', { PatientName: 'B^*', StudyInstanceUID: null }), 'PatientName of B').toEqual([]);
    // Orthanc matched the study each time (its values are B's): the tenant's own values did not.
    const recomputed = fake.summary().filter((call) => call === 'find Instance {"0010,0020":"P1","0020,000d":"1.1"} All:a');
    expect(recomputed).toHaveLength(3);
  });

  it('tells Mixing that the patient holds instances of several senders', async () => {
    storeSharedStudy();
    const noticed = vi.spyOn(mixing, 'noticeShared');

    await cfind(A, 'STUDY', { StudyInstanceUID: '1.1' });

    expect(noticed).toHaveBeenCalledWith(['P1']);
  });

  it('is found shared by asking Orthanc for at most one of the other sender\'s resources, however many it holds', async () => {
    storeSharedStudy();
    for (const index of [2, 3, 4]) fake.storeThrough(B, instance('P1', '1.1', '1.1.1', `1.1.1.${index}`, B_VALUES));
    const noticed = vi.spyOn(mixing, 'noticeShared');

    await cfind(A, 'STUDY', { StudyInstanceUID: '1.1' });

    const underPatient = fake.finds().filter((body) => body.ParentPatient === orthancId('P1'));
    expect(underPatient.map((body) => [body.LabelsConstraint, body.Limit])).toEqual([['None', 1]]);
    expect(noticed).toHaveBeenCalledWith(['P1']);
  });
});

describe('a patient marked "multitenant-mixed" whose other sender\'s instances were deleted', () => {
  it('is answered with the tenant\'s own values, not those Orthanc kept from the deleted instance', async () => {
    storeSharedStudy();
    fake.addLabel('Patient', orthancId('P1'), MIXED_LABEL);
    fake.remove('Series', orthancId('P1', '1.1', '1.1.1'));
    expect(fake.mainTagsOf('Study', orthancId('P1', '1.1'))[TAG.StudyDescription], 'what Orthanc still says').toBe('B study');

    const answers = await cfind(A, 'STUDY', { StudyInstanceUID: '1.1', PatientName: null, StudyDescription: null, NumberOfStudyRelatedInstances: null });

    expect(answers.map(byName)).toEqual([{ StudyInstanceUID: '1.1', PatientName: 'A^NAME', StudyDescription: 'A study', NumberOfStudyRelatedInstances: '2' }]);
    expect(await cfind(A, 'STUDY', { StudyDescription: 'B study' }), 'the deleted sender\'s value finds nothing').toEqual([]);
  });
});

describe('values that /tools/find would read as patterns', () => {
  // Each patient shares its study with B, who stored first; other patients, that such a
  // value read as a pattern or a list would reach, hold B's instances.
  // [what, PatientID, StudyInstanceUID, the C-FIND's own keys, the value read back that is never a constraint]
  it.each<[string, string, string, Keys, string]>([
    ['a PatientID with "*"', 'P*', '3.1', { StudyInstanceUID: '3.1' }, 'P*'],
    ['a PatientID with "\\"', 'A\\B', '3.2', { StudyInstanceUID: '3.2' }, 'A\\B'],
    ['an empty PatientID', '', '3.3', { StudyInstanceUID: '3.3' }, ''],
    ['a StudyInstanceUID with "?" (Orthanc refuses wildcards on UIDs)', 'P4', '3.?', { PatientID: 'P4' }, '3.?'],
  ])('%s is never a /tools/find constraint, and the tenant\'s own values are answered', async (_title, patient, study, query, literal) => {
    fake.storeThrough(B, instance(patient, study, `${study}.1`, `${study}.1.1`, B_VALUES));
    fake.storeThrough(A, instance(patient, study, `${study}.2`, `${study}.2.1`, A_VALUES));
    for (const other of ['PX', 'A', 'B']) fake.storeThrough(B, instance(other, `${other}.9`, `${other}.9.1`, `${other}.9.1.1`, B_VALUES));

    const keys: Keys = { StudyInstanceUID: null, PatientID: null, PatientName: null, StudyDescription: null, NumberOfStudyRelatedInstances: null };
    const answers = await cfind(A, 'STUDY', { ...keys, ...query });

    expect(answers.map(byName)).toEqual([
      { StudyInstanceUID: study, PatientID: patient, PatientName: 'A^NAME', StudyDescription: 'A study', NumberOfStudyRelatedInstances: '1' },
    ]);
    const [main, ...others] = fake.finds();
    expect(main?.Query, 'the main query: the identifier\'s own keys').toEqual(Object.fromEntries(Object.entries(query).map(([name, value]) => [TAG[name as TagName], value])));
    const sent = others.flatMap((body) => Object.values(body.Query)).flatMap((value) => [value, ...value.split('\\')]);
    expect(sent, 'values read back from Orthanc, sent as constraints').not.toContain(literal);
    expect(sent.filter((value) => /[*?]/.test(value) || value === ''), 'patterns').toEqual([]);
  });

  it('a patient with such a PatientID that holds only the tenant\'s instances keeps Orthanc\'s answer', async () => {
    fake.storeThrough(A, instance('P*', '5.1', '5.1.1', '5.1.1.1', A_VALUES));
    fake.storeThrough(B, instance('PX', '5.2', '5.2.1', '5.2.1.1', B_VALUES));

    const answers = await cfind(A, 'STUDY', { StudyInstanceUID: null, PatientID: null, NumberOfStudyRelatedInstances: null });

    expect(answers.map(byName)).toEqual([{ StudyInstanceUID: '5.1', PatientID: 'P*', NumberOfStudyRelatedInstances: '1' }]);
    expect(fake.constraintValues()).not.toContain('P*');
  });
});

describe('entitlement above the query level (LabelsStoreLevels without Instance)', () => {
  // A "None" tenant sees the series that carry none of its labels; whether they are its
  // own is decided by their study, the lowest of its LabelsStoreLevels.
  const NOT_A = tenant(2, ['a'], { labelsConstraint: 'None', labelsStoreLevels: ['Study'] });
  const A_STUDIES = tenant(0, ['a'], { labelsStoreLevels: ['Study'] });
  const B_STUDIES = tenant(1, ['b'], { labelsStoreLevels: ['Study'] });

  it('keeps only the series and instances whose study is the tenant\'s', async () => {
    fake.storeThrough(A_STUDIES, instance('P1', '6.1', '6.1.1', '6.1.1.1'));
    fake.storeThrough(B_STUDIES, instance('P2', '6.2', '6.2.1', '6.2.1.1'));
    fake.storeThrough(A_STUDIES, instance('P3', '6.?', '6.3.1', '6.3.1.1'));
    fake.storeThrough(B_STUDIES, instance('P4', '6.4?', '6.4.1', '6.4.1.1'));

    const series = await cfind(NOT_A, 'SERIES', { SeriesInstanceUID: null, StudyInstanceUID: null });
    expect(series.map(byName)).toEqual([
      { SeriesInstanceUID: '6.2.1', StudyInstanceUID: '6.2' },
      { SeriesInstanceUID: '6.4.1', StudyInstanceUID: '6.4?' },
    ]);
    expect(fake.constraintValues().filter((value) => value.includes('?')), 'UIDs with "?" reached through identifiers').toEqual([]);
    expect(fake.summary()).toContain(`GET /series/${orthancId('P3', '6.?', '6.3.1')}/study`);

    const instances = await cfind(NOT_A, 'IMAGE', { SOPInstanceUID: null });
    expect(instances.map(byName)).toEqual([{ SOPInstanceUID: '6.2.1.1' }, { SOPInstanceUID: '6.4.1.1' }]);
  });
});

describe('a DICOM request\'s view of Orthanc', () => {
  it('reads the tags of a shared resource\'s instances at most REQUEST_CONCURRENCY at a time', async () => {
    // A PatientID with "*": the instances are reached one by one through their identifiers.
    fake.storeThrough(B, instance('P*', '7.1', '7.1.1', '7.1.1.1', B_VALUES));
    for (let index = 1; index <= 3 * REQUEST_CONCURRENCY; index++) fake.storeThrough(A, instance('P*', '7.1', '7.1.2', `7.1.2.${index}`, A_VALUES));
    fake.deferAnswers = true;

    const answers = await cfind(A, 'STUDY', { StudyInstanceUID: '7.1', NumberOfStudyRelatedInstances: null }, orthanc.within(undefined));

    expect(answers.map(byName)).toEqual([{ StudyInstanceUID: '7.1', NumberOfStudyRelatedInstances: String(3 * REQUEST_CONCURRENCY) }]);
    expect(fake.summary().filter((call) => call.endsWith('/tags?short')).length).toBeGreaterThan(REQUEST_CONCURRENCY);
    expect(fake.maxInFlight).toBe(REQUEST_CONCURRENCY);
  });
});

// Bugs of src/find-entitled.ts (entitledInstancesOf) these tests found, fixed since.
describe('the entitled instances of a shared resource', () => {
  it('a shared study counts the tenant\'s instances of its own patient only, not those of a patient whose PatientID differs in case', async () => {
    // /tools/find is case-insensitive unless "CaseSensitive": true (Orthanc 1.12.7): the
    // restriction {PatientID, StudyInstanceUID} of entitledInstancesOf asks it.
    fake.storeThrough(B, instance('abc', '8.1', '8.1.1', '8.1.1.1', B_VALUES));
    fake.storeThrough(A, instance('abc', '8.1', '8.1.2', '8.1.2.1', A_VALUES));
    fake.storeThrough(A, instance('ABC', '8.1', '8.2.1', '8.2.1.1', { ...A_VALUES, PatientName: 'OTHER^PATIENT' }));
    fake.storeThrough(A, instance('ABC', '8.1', '8.2.1', '8.2.1.2', { ...A_VALUES, PatientName: 'OTHER^PATIENT' }));

    const answers = await cfind(A, 'STUDY', { StudyInstanceUID: '8.1', PatientID: 'abc', NumberOfStudyRelatedInstances: null, NumberOfStudyRelatedSeries: null });

    expect(answers.map(byName)).toEqual([{ StudyInstanceUID: '8.1', PatientID: 'abc', NumberOfStudyRelatedInstances: '1', NumberOfStudyRelatedSeries: '1' }]);
  });

  it('a tenant whose entitlement is above the query level is answered the series of a patient that holds another sender\'s study', async () => {
    // A constraint below a find's level (`find Study {SeriesInstanceUID}`) is answered with
    // nothing by Orthanc 1.12.7: the entitled studies are found by the study's own UID.
    const NOT_A = tenant(2, ['a'], { labelsConstraint: 'None', labelsStoreLevels: ['Study'] });
    fake.storeThrough(tenant(0, ['a'], { labelsStoreLevels: ['Study'] }), instance('P1', '10.1', '10.1.1', '10.1.1.1'));
    fake.store(instance('P1', '10.2', '10.2.1', '10.2.1.1', { Modality: 'CT' }));
    fake.store(instance('P1', '10.2', '10.2.2', '10.2.2.1', { Modality: 'MR' }));

    const answers = await cfind(NOT_A, 'SERIES', { SeriesInstanceUID: null, Modality: null });

    expect(answers.map(byName)).toEqual([
      { SeriesInstanceUID: '10.2.1', Modality: 'CT' },
      { SeriesInstanceUID: '10.2.2', Modality: 'MR' },
    ]);
  });
});
