// Patients of several senders (src/mixing.ts) over a fake Orthanc
// (test/support/fake-orthanc.ts), driven as the shim drives it: change events, then its
// 250 ms delay (vitest's fake timers), then what it asked of Orthanc.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ChangeEvent } from '../../src/bridge.js';
import type { TenantConfig } from '../../src/configuration.js';
import { orthancId, type OrthancIds } from '../../src/dicom.js';
import { MARKED_AT_ONCE, MIXED_LABEL, Mixing } from '../../src/mixing.js';
import { Orthanc } from '../../src/orthanc.js';
import { FakeOrthanc, TAG, type InstanceTags } from '../support/fake-orthanc.js';

const DELAY_MS = 250;

const tenant = (labels: string[]): Pick<TenantConfig, 'labels' | 'labelsStoreLevels'> => ({ labels, labelsStoreLevels: ['Study', 'Series', 'Instance'] });
const A = tenant(['a']);
const B = tenant(['b']);

let fake: FakeOrthanc;
let mixing: Mixing;
let logs: string[];

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  fake = new FakeOrthanc();
  logs = [];
  mixing = new Mixing(
    Orthanc.connect(fake.bridge),
    { info: (message) => logs.push(`info: ${message}`), error: (message) => logs.push(`error: ${message}`) },
    (patientId) => fake.bridge.storeActivity(patientId),
  );
});

afterEach(() => {
  vi.useRealTimers();
});

/** Lets the delay pass, then every check it started run to its end (the fake answers at once). */
async function afterDelay(): Promise<void> {
  await vi.advanceTimersByTimeAsync(DELAY_MS);
  await new Promise((resolve) => setImmediate(resolve));
}

function instance(patient: string, study: string, series: string, sop: string, more: InstanceTags = {}): InstanceTags {
  return { PatientID: patient, StudyInstanceUID: study, SeriesInstanceUID: series, SOPInstanceUID: sop, ...more };
}

const newInstance = (ids: OrthancIds): ChangeEvent => ({ type: 'NewChildInstance', level: 'Patient', id: ids.Patient });
const deleted = (level: ChangeEvent['level'], id: string): ChangeEvent => ({ type: 'Deleted', level, id });
const newPatient = (ids: OrthancIds): ChangeEvent => ({ type: 'NewPatient', level: 'Patient', id: ids.Patient });
const mark = (patient: string) => `PUT /patients/${patient}/labels/${MIXED_LABEL}`;
/** What was written (a /tools/find is a read: its summary begins with "find"). */
const writes = () => fake.summary().filter((call) => /^(PUT|POST|DELETE) /.test(call));
/** The reads of patients: their labels, and their descendants' (GET /system aside). */
const reads = () => fake.summary().filter((call) => call.startsWith('find') || call.startsWith('GET /patients'));
/** One reading of a patient: its labels, then those of its studies, series and instances. */
const readingOf = (patient: string) => [
  `GET /patients/${patient}/labels`,
  `find Study {} under:${patient}`,
  `find Series {} under:${patient}`,
  `find Instance {} under:${patient}`,
];

describe('a new instance', () => {
  it('whose patient holds instances with other labels: the patient is marked, once', async () => {
    fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    const ids = fake.storeThrough(B, instance('P1', '1.2', '1.2.1', '1.2.1.1'));

    mixing.notice([newInstance(ids)]);
    await afterDelay();

    expect(writes()).toEqual([mark(ids.Patient)]);
    expect(fake.labelsOf('Patient', ids.Patient)).toEqual([MIXED_LABEL]);
    expect(logs).toEqual([`info: multitenant-dicom: patient ${ids.Patient} holds instances of several senders: marked "${MIXED_LABEL}"`]);

    fake.clearCalls();
    mixing.notice([newInstance(fake.storeThrough(B, instance('P1', '1.2', '1.2.1', '1.2.1.2')))]);
    await afterDelay();
    expect(writes(), 'already marked').toEqual([]);
  });

  it('is judged a moment later: nothing is read before the delay', async () => {
    const ids = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));

    mixing.notice([newInstance(ids)]);
    await vi.advanceTimersByTimeAsync(DELAY_MS - 1);

    expect(fake.calls).toEqual([]);
  });

  it('whose patient holds instances of one sender only: nothing changes', async () => {
    fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    const ids = fake.storeThrough(A, instance('P1', '1.2', '1.2.1', '1.2.1.1'));

    mixing.notice([newInstance(ids), newInstance(ids)]);
    await afterDelay();

    expect(reads(), 'the patient read once').toEqual(readingOf(ids.Patient));
    expect(writes(), 'nothing written').toEqual([]);
    expect(fake.labelsOf('Patient', ids.Patient)).toEqual([]);
  });

  it('on an Orthanc without ExtendedFind (before 1.12.5): read through the patient\'s child lists, judged the same', async () => {
    fake.hasExtendedFind = false;
    fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    const ids = fake.storeThrough(B, instance('P1', '1.2', '1.2.1', '1.2.1.1'));

    mixing.notice([newInstance(ids)]);
    await afterDelay();

    const uri = `/patients/${ids.Patient}`;
    expect(reads()).toEqual([`GET ${uri}`, `GET ${uri}/studies`, `GET ${uri}/series`, `GET ${uri}/instances`]);
    expect(writes()).toEqual([mark(ids.Patient)]);
  });

  it('from Orthanc\'s own port (no labels) into a tenant\'s patient: the patient is marked', async () => {
    fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    const ids = fake.store(instance('P1', '1.1', '1.1.1', '1.1.1.2'));

    mixing.notice([newInstance(ids)]);
    await afterDelay();

    expect(fake.summary()).toContain(mark(ids.Patient));
  });

  it('of a patient a store of this process is still labelling: judged only once the store is done', async () => {
    fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    // Stored, not labelled yet: it would look like another sender's.
    const ids = fake.store(instance('P1', '1.1', '1.1.1', '1.1.1.2'));
    fake.beginStore(ids.Patient);

    mixing.notice([newInstance(ids)]);
    for (let period = 0; period < 3; period++) await afterDelay();
    expect(fake.calls, 'nothing read while the store is in progress').toEqual([]);

    fake.addLabel('Instance', ids.Instance, 'a');
    fake.endStore(ids.Patient);
    await afterDelay();

    expect(reads(), 'read once the store is done').toEqual(readingOf(ids.Patient));
    expect(writes(), 'its labels are A\'s: not marked').toEqual([]);
  });

  it('of a patient a store of this process began writing into while it was read: judged again, not marked', async () => {
    const first = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    mixing.notice([newInstance(first)]);
    let second: OrthancIds | undefined;
    fake.whileAnswering = (call) => {
      // Twenty parallel associations: another store through A posts its instance into the
      // patient while the check reads it, and labels it only afterwards.
      if (second === undefined && call.uri.endsWith('/labels')) {
        second = fake.store(instance('P1', '1.1', '1.1.1', '1.1.1.2'));
        fake.beginStore(second.Patient);
      }
    };
    await afterDelay();
    fake.whileAnswering = undefined;
    fake.addLabel('Instance', second!.Instance, 'a');
    fake.endStore(second!.Patient);
    for (let period = 0; period < 2; period++) await afterDelay();

    expect(reads(), 'read twice').toEqual([...readingOf(first.Patient), ...readingOf(first.Patient)]);
    expect(writes(), 'its labels are A\'s: never marked').toEqual([]);
  });

  it('of a patient instances keep arriving into (a large study): read once they pause, not at every delay', async () => {
    const patient = orthancId('P1');
    for (let sop = 1; sop <= 20; sop++) {
      // Notifications of a steady stream of stores come at most 100 ms apart.
      mixing.notice([newInstance(fake.storeThrough(A, instance('P1', '1.1', '1.1.1', `1.1.1.${sop}`)))]);
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(reads(), 'nothing read during 2 s of new instances').toEqual([]);
    await afterDelay();
    expect(reads(), 'read once, after a pause').toEqual(readingOf(patient));
  });

  it('of a patient instances never stop arriving into: read all the same, every 5 seconds', async () => {
    const patient = orthancId('P1');
    for (let sop = 1; sop <= 110; sop++) {
      mixing.notice([newInstance(fake.storeThrough(A, instance('P1', '1.1', '1.1.1', `1.1.1.${sop}`)))]);
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(reads(), 'twice in 11 s').toEqual([...readingOf(patient), ...readingOf(patient)]);
    expect(writes(), 'one sender: not marked').toEqual([]);
  });

  it('that Orthanc created its patient for (NewPatient): the patient is not read, it holds one sender\'s', async () => {
    const ids = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));

    mixing.notice([newPatient(ids), newInstance(ids)]);
    await afterDelay();

    expect(fake.calls).toEqual([]);
  });

  it('a new patient that gets a second instance before it is judged: read, and marked if the senders differ', async () => {
    const first = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    mixing.notice([newPatient(first), newInstance(first)]);
    const second = fake.storeThrough(B, instance('P1', '1.2', '1.2.1', '1.2.1.1'));
    mixing.notice([newInstance(second)]);
    await afterDelay();

    expect(reads()).toEqual(readingOf(first.Patient));
    expect(writes()).toEqual([mark(first.Patient)]);
  });

  it('a new patient\'s later instance, after it was passed over: read', async () => {
    const first = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    mixing.notice([newPatient(first), newInstance(first)]);
    await afterDelay();
    const second = fake.storeThrough(B, instance('P1', '1.2', '1.2.1', '1.2.1.1'));
    mixing.notice([newInstance(second)]);
    await afterDelay();

    expect(reads()).toEqual(readingOf(first.Patient));
    expect(writes()).toEqual([mark(first.Patient)]);
  });

  it('a new patient noticed by a C-FIND too (several senders seen there): read', async () => {
    const ids = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    mixing.notice([newPatient(ids), newInstance(ids)]);
    mixing.noticeShared(['P1']);
    await afterDelay();

    expect(reads()).toEqual(readingOf(ids.Patient));
  });

  describe('a new patient (NewPatient) that got several instances, counted against the reports of the tenants\' stores', () => {
    const PLAN_A = 'Study/a\nSeries/a\nInstance/a\n';
    const PLAN_B = 'Study/b\nSeries/b\nInstance/b\n';
    const reported = (ids: OrthancIds, plan: string) => mixing.noticeTenantStore(ids.Patient, plan);

    it('each stored by a tenant of this process with one label plan: not read', async () => {
      const stored = ['1.1.1.1', '1.1.1.2', '1.1.2.1'].map((sop) => fake.storeThrough(A, instance('P1', '1.1', sop.slice(0, 5), sop)));
      mixing.notice([newPatient(stored[0]!), ...stored.map(newInstance)]);
      for (const ids of stored) reported(ids, PLAN_A);
      await afterDelay();

      expect(fake.calls).toEqual([]);
    });

    it('one of them not stored by a tenant (no report, e.g. Orthanc\'s own port): read and marked', async () => {
      const first = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
      const second = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.2'));
      const foreign = fake.store(instance('P1', '1.1', '1.1.1', '1.1.1.3'));
      mixing.notice([newPatient(first), newInstance(first), newInstance(second), newInstance(foreign)]);
      reported(first, PLAN_A);
      reported(second, PLAN_A);
      await afterDelay();

      expect(reads()).toEqual(readingOf(first.Patient));
      expect(writes()).toEqual([mark(first.Patient)]);
    });

    it('stored by tenants of two label plans: read and marked', async () => {
      const first = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
      const second = fake.storeThrough(B, instance('P1', '1.2', '1.2.1', '1.2.1.1'));
      mixing.notice([newPatient(first), newInstance(first), newInstance(second)]);
      reported(first, PLAN_A);
      reported(second, PLAN_B);
      await afterDelay();

      expect(writes()).toEqual([mark(first.Patient)]);
    });

    it('a report ahead of its change, a foreign instance in the same check: passed over then, read once that change comes', async () => {
      const first = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
      const foreign = fake.store(instance('P1', '1.1', '1.1.1', '1.1.1.2'));
      const late = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.3'));
      mixing.notice([newPatient(first), newInstance(first), newInstance(foreign)]);
      reported(first, PLAN_A);
      reported(late, PLAN_A);
      await afterDelay();
      expect(fake.calls).toEqual([]);

      mixing.notice([newInstance(late)]);
      await afterDelay();
      expect(reads()).toEqual(readingOf(first.Patient));
      expect(writes()).toEqual([mark(first.Patient)]);
    });

    it('reports alone (their changes came in an earlier check): nothing is read', async () => {
      const ids = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
      reported(ids, PLAN_A);
      await afterDelay();

      expect(fake.calls).toEqual([]);
    });
  });

  it('of a patient deleted meanwhile: nothing happens, nothing is logged', async () => {
    const ids = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    mixing.notice([newInstance(ids)]);
    fake.remove('Patient', ids.Patient);

    await afterDelay();

    expect(writes()).toEqual([]);
    expect(logs).toEqual([]);
  });
});

describe('a patient known to hold the instances of one label plan', () => {
  const PLAN_A = 'Study/a\nSeries/a\nInstance/a\n';
  const PLAN_B = 'Study/b\nSeries/b\nInstance/b\n';
  /** A store through a tenant of this process, as the shim reports it: Orthanc's change and the store's report. */
  function storedByTenant(tenant: typeof A, plan: string, tags: InstanceTags, created = false): OrthancIds {
    const ids = fake.storeThrough(tenant, tags);
    mixing.notice(created ? [newPatient(ids), newInstance(ids)] : [newInstance(ids)]);
    mixing.noticeTenantStore(ids.Patient, plan);
    return ids;
  }
  beforeEach(() => {
    fake.databaseBackendPlugin = null; // Orthanc's built-in SQLite index, which no other Orthanc writes
  });
  /** `count` associations of tenant A into P1's series 1.1.1, one instance each, a pause after each. */
  async function associationsOfA(count: number): Promise<void> {
    for (let association = 0; association < count; association++) {
      storedByTenant(A, PLAN_A, instance('P1', '1.1', '1.1.1', `1.1.1.${association + 2}`));
      await afterDelay();
    }
  }
  /** A's patient P1, created by a store of this process and passed over. */
  async function patientOfA(): Promise<OrthancIds> {
    mixing.start(); // the sweep learns that the index is Orthanc's built-in one
    await afterDelay();
    const ids = storedByTenant(A, PLAN_A, instance('P1', '1.1', '1.1.1', '1.1.1.1'), true);
    await afterDelay();
    fake.clearCalls();
    return ids;
  }

  it('a later association of the same plan (a study sent in several): not read', async () => {
    await patientOfA();
    for (const sop of ['1.1.1.2', '1.1.1.3']) storedByTenant(A, PLAN_A, instance('P1', '1.1', '1.1.1', sop));
    await afterDelay();
    storedByTenant(A, PLAN_A, instance('P1', '1.3', '1.3.1', '1.3.1.1'));
    await afterDelay();

    expect(fake.calls).toEqual([]);
  });

  it('a later store of another plan: read and marked', async () => {
    const ids = await patientOfA();
    storedByTenant(B, PLAN_B, instance('P1', '1.2', '1.2.1', '1.2.1.1'));
    await afterDelay();

    expect(reads()).toEqual(readingOf(ids.Patient));
    expect(writes()).toEqual([mark(ids.Patient)]);
  });

  it('a later instance through Orthanc\'s own port (no report): read and marked', async () => {
    const ids = await patientOfA();
    mixing.notice([newInstance(fake.store(instance('P1', '1.1', '1.1.1', '1.1.1.2')))]);
    await afterDelay();

    expect(reads()).toEqual(readingOf(ids.Patient));
    expect(writes()).toEqual([mark(ids.Patient)]);
  });

  it('once marked, a later store of the first plan: read again (the mark stays)', async () => {
    const ids = await patientOfA();
    storedByTenant(B, PLAN_B, instance('P1', '1.2', '1.2.1', '1.2.1.1'));
    await afterDelay();
    fake.clearCalls();
    storedByTenant(A, PLAN_A, instance('P1', '1.1', '1.1.1', '1.1.1.2'));
    await afterDelay();

    expect(reads()).toEqual(readingOf(ids.Patient));
    expect(writes()).toEqual([]);
  });

  it('after any deletion, a later store of the same plan: read, once', async () => {
    const ids = await patientOfA();
    const other = fake.storeThrough(A, instance('P2', '2.1', '2.1.1', '2.1.1.1'));
    fake.remove('Patient', other.Patient);
    mixing.notice([deleted('Patient', other.Patient)]);
    await afterDelay();
    fake.clearCalls();
    await associationsOfA(2);

    expect(reads()).toEqual(readingOf(ids.Patient));
  });

  it('that existed before (read once): the next store of the same plan is not read', async () => {
    mixing.start();
    await afterDelay();
    const ids = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    fake.clearCalls();
    await associationsOfA(3);

    expect(reads()).toEqual(readingOf(ids.Patient));
  });

  it('on another index (a cluster\'s nodes store too, unseen here): read after each association', async () => {
    fake.databaseBackendPlugin = '/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so';
    const ids = await patientOfA();
    await associationsOfA(2);

    expect(reads()).toEqual([...readingOf(ids.Patient), ...readingOf(ids.Patient)]);
  });
});

describe('a deletion', () => {
  /** Patient P1: A's study 1.1 stored after B's study 1.2 (Orthanc keeps B's PatientName), marked. */
  function markedPatient(): { own: OrthancIds; other: OrthancIds } {
    const other = fake.storeThrough(B, instance('P1', '1.2', '1.2.1', '1.2.1.1', { PatientName: 'B^NAME' }));
    const own = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1', { PatientName: 'A^NAME' }));
    fake.storeThrough(A, instance('P1', '1.1', '1.1.2', '1.1.2.1', { PatientName: 'A^NAME' }));
    fake.addLabel('Patient', own.Patient, MIXED_LABEL);
    return { own, other };
  }

  it('that leaves a marked patient with one sender: each of its resources is rebuilt, then the mark removed', async () => {
    const { own, other } = markedPatient();
    fake.remove('Study', other.Study);
    expect(fake.mainTagsOf('Patient', own.Patient)[TAG.PatientName], 'what Orthanc kept').toBe('B^NAME');

    mixing.notice([deleted('Study', other.Study)]);
    await afterDelay(); // the marked patients are listed
    await afterDelay(); // and checked

    expect(fake.reconstructions).toEqual([
      { level: 'Patient', id: own.Patient, body: { LimitToThisLevelMainDicomTags: true } },
      { level: 'Study', id: own.Study, body: { LimitToThisLevelMainDicomTags: true } },
      { level: 'Series', id: orthancId('P1', '1.1', '1.1.1'), body: { LimitToThisLevelMainDicomTags: true } },
      { level: 'Series', id: orthancId('P1', '1.1', '1.1.2'), body: { LimitToThisLevelMainDicomTags: true } },
    ]);
    expect(fake.summary().at(-1)).toBe(`DELETE /patients/${own.Patient}/labels/${MIXED_LABEL}`);
    expect(fake.labelsOf('Patient', own.Patient)).toEqual([]);
    expect(fake.mainTagsOf('Patient', own.Patient)[TAG.PatientName]).toBe('A^NAME');
    expect(logs).toEqual([`info: multitenant-dicom: patient ${own.Patient} now holds the instances of one sender: its values are rebuilt from them`]);
  });

  it('that leaves a marked patient with several senders: it stays marked, nothing is rebuilt', async () => {
    const { own } = markedPatient();
    fake.remove('Series', orthancId('P1', '1.1', '1.1.2'));

    mixing.notice([deleted('Series', orthancId('P1', '1.1', '1.1.2'))]);
    await afterDelay();
    await afterDelay();

    expect(fake.reconstructions).toEqual([]);
    expect(fake.labelsOf('Patient', own.Patient)).toEqual([MIXED_LABEL]);
    expect(fake.summary()).toContain(`find Patient {} All:${MIXED_LABEL}`);
  });

  it('after a new instance of a patient never marked: if it is left with one sender, it is rebuilt all the same', async () => {
    // B's instance came and went before the patient was judged: Orthanc may keep its values.
    const other = fake.storeThrough(B, instance('P1', '1.2', '1.2.1', '1.2.1.1'));
    const own = fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    mixing.notice([newInstance(own)]);
    fake.remove('Study', other.Study);
    mixing.notice([deleted('Study', other.Study)]);

    await afterDelay();

    expect(fake.reconstructions.map((call) => call.level)).toEqual(['Patient', 'Study', 'Series']);
    expect(fake.summary()).not.toContain(`DELETE /patients/${own.Patient}/labels/${MIXED_LABEL}`);
  });

  it('at start-up, the marked patients are checked as after a deletion', async () => {
    const { own, other } = markedPatient();
    fake.remove('Study', other.Study);

    mixing.start();
    await afterDelay();
    await afterDelay();

    expect(fake.labelsOf('Patient', own.Patient)).toEqual([]);
    expect(fake.reconstructions.map((call) => call.level)).toEqual(['Patient', 'Study', 'Series', 'Series']);
  });
});

describe('the marked patients among a C-FIND\'s', () => {
  /** Patient `patient`: B's study, then A's. */
  function mixedPatient(patient: string): { own: OrthancIds; other: OrthancIds } {
    const other = fake.storeThrough(B, instance(patient, '1.2', '1.2.1', '1.2.1.1'));
    const own = fake.storeThrough(A, instance(patient, '1.1', '1.1.1', '1.1.1.1'));
    return { own, other };
  }

  it('are found with one lookup of the marked patients by label, by Orthanc identifier, also for values /tools/find would read as patterns', async () => {
    const patients = ['P1', 'P2', 'P*', 'A\\B', '', 'PX', 'A', 'B'];
    for (const [index, patient] of patients.entries()) fake.storeThrough(A, instance(patient, `1.${index}`, `1.${index}.1`, `1.${index}.1.1`));
    // Marked: P1, the pattern-like three's first and last, and those a pattern would reach.
    for (const patient of ['P1', 'P*', '', 'PX', 'A', 'B']) fake.addLabel('Patient', orthancId(patient), MIXED_LABEL);

    const marked = await mixing.markedAmong(Orthanc.connect(fake.bridge), ['P1', 'P2', 'P*', 'A\\B', '', 'P3']);

    expect([...marked].sort()).toEqual(['', 'P*', 'P1']);
    expect(fake.summary()).toEqual(['GET /tools/labels', `find Patient {} All:${MIXED_LABEL}`]);
  });

  it('are none, at the cost of a look at the labels in use, when no resource carries the mark', async () => {
    fake.storeThrough(A, instance('P1', '1.1', '1.1.1', '1.1.1.1'));
    fake.storeThrough(B, instance('P1', '1.2', '1.2.1', '1.2.1.1'));

    expect([...(await mixing.markedAmong(Orthanc.connect(fake.bridge), ['P1']))]).toEqual([]);
    expect(fake.summary()).toEqual(['GET /tools/labels']);
  });

  it('are read from the list of every marked patient page after page, when Orthanc caps /tools/find (LimitFindResults)', async () => {
    const view = Orthanc.connect(fake.bridge);
    view.setFindLimits(100, 0);
    const patients = Array.from({ length: 150 }, (_, index) => `M${index}`);
    for (const [index, patient] of patients.entries()) {
      fake.storeThrough(A, instance(patient, `5.${index}`, `5.${index}.1`, `5.${index}.1.1`));
      fake.addLabel('Patient', orthancId(patient), MIXED_LABEL);
    }

    expect([...(await mixing.markedAmong(view, ['M0', 'M149', 'unknown']))].sort()).toEqual(['M0', 'M149']);
    expect(fake.finds().map((body) => [body.Limit, body.Since])).toEqual([
      [100, 0],
      [100, 100],
    ]);
  });

  it('are looked up by PatientID (by Orthanc identifier for pattern-like values) when more than MARKED_AT_ONCE patients are marked', async () => {
    for (let index = 0; index <= MARKED_AT_ONCE; index++) {
      const patient = `M${index}`;
      fake.storeThrough(A, instance(patient, `5.${index}`, `5.${index}.1`, `5.${index}.1.1`));
      fake.addLabel('Patient', orthancId(patient), MIXED_LABEL);
    }
    fake.storeThrough(A, instance('P*', '6.1', '6.1.1', '6.1.1.1'));
    fake.addLabel('Patient', orthancId('P*'), MIXED_LABEL);
    fake.storeThrough(A, instance('P1', '6.2', '6.2.1', '6.2.1.1'));

    const marked = await mixing.markedAmong(Orthanc.connect(fake.bridge), ['M7', 'P*', 'P1']);

    expect([...marked].sort()).toEqual(['M7', 'P*']);
    expect(fake.summary().filter((call) => call !== 'GET /system')).toEqual([
      'GET /tools/labels',
      `find Patient {} All:${MIXED_LABEL}`,
      `find Patient {"0010,0020":"M7\\\\P1"} All:${MIXED_LABEL}`,
      `GET /patients/${orthancId('P*')}/labels`,
    ]);
  });

  describe('on Orthanc\'s built-in SQLite index, which no other Orthanc writes', () => {
    beforeEach(() => {
      fake.databaseBackendPlugin = null;
    });

    it('are known once the sweep at start-up listed them: Orthanc is not asked', async () => {
      const { own } = mixedPatient('P1');
      fake.addLabel('Patient', own.Patient, MIXED_LABEL);
      fake.storeThrough(A, instance('P2', '2.1', '2.1.1', '2.1.1.1'));
      mixing.start();
      await afterDelay();
      fake.clearCalls();

      expect([...(await mixing.markedAmong(Orthanc.connect(fake.bridge), ['P1', 'P2', 'P9']))]).toEqual(['P1']);
      expect(fake.calls).toEqual([]);
    });

    it('are not known before that sweep: Orthanc is asked', async () => {
      const { own } = mixedPatient('P1');
      fake.addLabel('Patient', own.Patient, MIXED_LABEL);

      expect([...(await mixing.markedAmong(Orthanc.connect(fake.bridge), ['P1']))]).toEqual(['P1']);
      expect(fake.summary()).toEqual(['GET /tools/labels', `find Patient {} All:${MIXED_LABEL}`]);
    });

    it('include a patient this process marks, and no longer one whose mark it removes', async () => {
      mixing.start();
      await afterDelay();
      const { own, other } = mixedPatient('P1');
      mixing.notice([newInstance(own)]);
      await afterDelay();
      expect(fake.labelsOf('Patient', own.Patient)).toEqual([MIXED_LABEL]);
      expect([...(await mixing.markedAmong(Orthanc.connect(fake.bridge), ['P1']))]).toEqual(['P1']);

      fake.remove('Study', other.Study);
      mixing.notice([deleted('Study', other.Study)]);
      await afterDelay(); // the marked patients are listed
      await afterDelay(); // and checked: the mark goes
      expect(fake.labelsOf('Patient', own.Patient)).toEqual([]);
      fake.clearCalls();
      expect([...(await mixing.markedAmong(Orthanc.connect(fake.bridge), ['P1']))]).toEqual([]);
      expect(fake.calls).toEqual([]);
    });
  });

  it('on another index (a cluster\'s nodes may mark patients too): Orthanc is asked, even after the sweep', async () => {
    fake.databaseBackendPlugin = '/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so';
    mixing.start();
    await afterDelay();
    const { own } = mixedPatient('P1');
    fake.addLabel('Patient', own.Patient, MIXED_LABEL); // by another node
    fake.clearCalls();

    expect([...(await mixing.markedAmong(Orthanc.connect(fake.bridge), ['P1']))]).toEqual(['P1']);
    expect(fake.summary()).toEqual(['GET /tools/labels', `find Patient {} All:${MIXED_LABEL}`]);
  });

  it('asks nothing for no patients, and answers none for a PatientID Orthanc does not hold', async () => {
    expect(await mixing.markedAmong(Orthanc.connect(fake.bridge), [])).toEqual(new Set());
    expect(fake.calls).toEqual([]);
    expect(await mixing.markedAmong(Orthanc.connect(fake.bridge), ['P*'])).toEqual(new Set());
  });
});
