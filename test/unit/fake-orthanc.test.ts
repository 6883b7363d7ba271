// The fake Orthanc of the unit tests (test/support/fake-orthanc.ts) behaves as Orthanc
// 1.12.7 was seen to, on what the orchestration tests rely on.
import { beforeEach, describe, expect, it } from 'vitest';
import { orthancId } from '../../src/dicom.js';
import { FakeOrthanc, TAG, type FindCallBody } from '../support/fake-orthanc.js';

let fake: FakeOrthanc;

beforeEach(() => {
  fake = new FakeOrthanc();
});

const get = async (uri: string) => JSON.parse((await fake.bridge.restGet(uri)).toString());
const find = async (body: Partial<FindCallBody>) => JSON.parse((await fake.bridge.restPost('/tools/find', JSON.stringify(body))).toString());
const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (error: { orthancCode?: number }) => error.orthancCode);

function storeTwoSenders() {
  fake.store({ PatientID: 'abc', PatientName: 'FIRST', StudyInstanceUID: '1.1', StudyDescription: 'first', SeriesInstanceUID: '1.1.1', Modality: 'MR', SOPInstanceUID: '1.1.1.1' }, { Instance: ['b'], Series: ['b'], Study: ['b'] });
  fake.store({ PatientID: 'abc', PatientName: 'SECOND', StudyInstanceUID: '1.1', StudyDescription: 'second', SeriesInstanceUID: '1.1.2', Modality: 'CT', SOPInstanceUID: '1.1.2.1' }, { Instance: ['a'], Series: ['a'], Study: ['a'] });
  fake.store({ PatientID: 'ABC', PatientName: 'OTHER', StudyInstanceUID: '1.2', SeriesInstanceUID: '1.2.1', SOPInstanceUID: '1.2.1.1' });
}

describe('the fake Orthanc', () => {
  it('identifies resources as Orthanc does', () => {
    // As stored by Orthanc 1.12.7: PatientID "abc", study 8.1, series 8.1.2, instance 8.1.2.1.
    expect(fake.store({ PatientID: 'abc', StudyInstanceUID: '8.1', SeriesInstanceUID: '8.1.2', SOPInstanceUID: '8.1.2.1' })).toEqual({
      Patient: 'a9993e36-4706816a-ba3e2571-7850c26c-9cd0d89d',
      Study: '2f97119c-5840910a-889e7e33-303afb22-efd024a1',
      Series: '37d4dad1-26567d55-07c9bb65-f430fa3e-84a19ea3',
      Instance: '9735616d-917c3b5d-7e78ea53-143c1a77-318dfcc9',
    });
  });

  it('keeps the values of the first instance, after its deletion too, until a reconstruct', async () => {
    storeTwoSenders();
    const study = orthancId('abc', '1.1');
    fake.remove('Series', orthancId('abc', '1.1', '1.1.1'));

    expect((await get(`/studies/${study}`)).MainDicomTags).toEqual({ StudyInstanceUID: '1.1', StudyDescription: 'first' });
    expect((await get(`/studies/${study}?short`)).PatientMainDicomTags).toEqual({ [TAG.PatientID]: 'abc', [TAG.PatientName]: 'FIRST' });
    await fake.bridge.restPost(`/studies/${study}/reconstruct`, JSON.stringify({ LimitToThisLevelMainDicomTags: true }));
    expect((await get(`/studies/${study}`)).MainDicomTags.StudyDescription).toBe('second');
    expect((await get(`/studies/${study}`)).PatientMainDicomTags.PatientName, 'the study\'s copy of the patient tags').toBe('SECOND');
    expect((await get(`/patients/${orthancId('abc')}`)).MainDicomTags.PatientName, 'the patient is rebuilt on its own').toBe('FIRST');
  });

  it('matches as /tools/find: lists, wildcards where the VR allows them, case only when asked, labels', async () => {
    storeTwoSenders();
    const ids = async (body: Partial<FindCallBody>) => ((await find(body)) as string[]).length;

    expect(await ids({ Level: 'Patient', Query: { [TAG.PatientID]: 'abc' } }), 'case-insensitive by default').toBe(2);
    expect(await ids({ Level: 'Patient', Query: { [TAG.PatientID]: 'abc' }, CaseSensitive: true })).toBe(1);
    expect(await ids({ Level: 'Patient', Query: { [TAG.PatientID]: 'a*' } })).toBe(2);
    expect(await ids({ Level: 'Patient', Query: { [TAG.PatientID]: 'a*\\zz' } }), '"*" in a list is a literal').toBe(0);
    expect(await ids({ Level: 'Study', Query: { [TAG.PatientName]: 'SECOND' } }), 'the study\'s copy is FIRST').toBe(0);
    expect(await ids({ Level: 'Study', Query: { [TAG.SeriesInstanceUID]: '1.1.2' } }), 'a tag below the level').toBe(0);
    expect(await ids({ Level: 'Study', Query: {}, Labels: ['a'], LabelsConstraint: 'None' })).toBe(1);
    expect(await ids({ Level: 'Study', Query: {}, Labels: ['bad!'], LabelsConstraint: 'Any' }), 'an invalid label').toBe(0);
    expect(await failure(find({ Level: 'Study', Query: { [TAG.StudyInstanceUID]: '1.?' } })), 'a wildcard on a UID').toBe(3);
  });

  it('answers counters over every instance, and ResponseContent as asked', async () => {
    storeTwoSenders();

    expect(
      await find({ Level: 'Study', Query: { [TAG.StudyInstanceUID]: '1.1' }, ResponseContent: ['RequestedTags', 'Labels'], Short: true, RequestedTags: ['0008,0061', '0020,1208', '0020,1209'] }),
    ).toEqual([{ ID: orthancId('abc', '1.1'), Type: 'Study', RequestedTags: { '0008,0061': 'CT\\MR', '0020,1208': '2' }, Labels: ['a', 'b'] }]);
  });

  it('looks identifiers up without case, exactly otherwise', async () => {
    storeTwoSenders();
    const lookup = async (value: string) => JSON.parse((await fake.bridge.restPost('/tools/lookup', value)).toString()) as { ID: string }[];

    expect((await lookup('ABC')).map((match) => match.ID)).toEqual([orthancId('abc'), orthancId('ABC')]);
    expect(await lookup('a*')).toEqual([]);
  });

  it('deletes the parents left empty, and refuses what it does not hold', async () => {
    storeTwoSenders();
    await fake.bridge.restDelete(`/instances/${orthancId('ABC', '1.2', '1.2.1', '1.2.1.1')}`);

    expect(fake.has('Patient', orthancId('ABC'))).toBe(false);
    expect(await failure(get(`/patients/${orthancId('ABC')}`))).toBe(17);
    expect(await failure(get('/nothing'))).toBe(17);
    expect(await failure(fake.bridge.restPut(`/patients/${orthancId('abc')}/labels/bad!`, ''))).toBe(3);
    expect(fake.summary()).toEqual([
      `DELETE /instances/${orthancId('ABC', '1.2', '1.2.1', '1.2.1.1')}`,
      `GET /patients/${orthancId('ABC')}`,
      'GET /nothing',
      `PUT /patients/${orthancId('abc')}/labels/bad!`,
    ]);
  });
});
