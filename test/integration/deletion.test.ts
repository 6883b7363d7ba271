// Another sender's instances deleted from a patient a tenant shares (src/mixing.ts).
// Orthanc keeps a patient's, study's and series' attributes from their first instance,
// even once it is deleted. Here tenant A (or Orthanc's own port) stores first, tenant B
// stores into the same patient, study or series, then A's part is deleted through the
// REST API. Afterwards, through B, at every query level: the answers hold B's values
// only, B's own values find B's resources, and A's (deleted) values find nothing;
// through A, nothing shows.
//
// While the patient is shared it carries the label "multitenant-mixed", in Orthanc's
// database; once the deletion leaves it with one sender, the plugin rebuilds its values
// from what remains and removes the label. The tests wait for that, then check.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orthancIds, SOP_CLASS, writeInstance, type SyntheticInstance } from '../support/dataset.js';
import { dicomStrings, findscu, storescu } from '../support/dcmtk.js';
import { freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { multitenantSection, PLUGIN_PATH } from '../support/plugin.js';

const MIXED = 'multitenant-mixed';
const CALLING = 'DELETION_TEST';
const ROOT = '1.2.826.0.1.3680043.10.1234.5151';
const LEVELS = ['Patient', 'Study', 'Series', 'Instance'];

interface Tenant {
  aet: string;
  port: number;
}

/** What each side's instances say: every value tells the side it came from. */
const VALUES = {
  first: { name: 'Alpha^Jürgen', charset: 'ISO_IR 100', description: 'ALPHA side', accession: 'ALPHA-1', modality: 'CT' as const },
  second: { name: 'Bravo^Δέλτα', charset: 'ISO_IR 126', description: 'BRAVO side', accession: 'BRAVO-1', modality: 'MR' as const },
};

interface Scenario {
  key: string;
  title: string;
  /** Who stores first (undefined: Orthanc's own port). */
  firstThrough: 'A' | undefined;
  /** What the second sender shares with the first. */
  shares: 'patient' | 'study' | 'series';
  /** How the first sender's part is deleted. */
  deleteLevel: 'studies' | 'series' | 'instances';
}

const SCENARIOS: Scenario[] = [
  { key: 'patient', title: 'A\'s study deleted from a patient shared with B', firstThrough: 'A', shares: 'patient', deleteLevel: 'studies' },
  { key: 'study', title: 'A\'s series deleted from a study shared with B', firstThrough: 'A', shares: 'study', deleteLevel: 'series' },
  { key: 'series', title: 'A\'s instance deleted from a series shared with B', firstThrough: 'A', shares: 'series', deleteLevel: 'instances' },
  { key: 'main', title: 'the main port\'s instance deleted from a series shared with B', firstThrough: undefined, shares: 'series', deleteLevel: 'instances' },
];

const QUERY_LEVELS = ['PATIENT', 'STUDY', 'SERIES', 'IMAGE'] as const;
type QueryLevel = (typeof QUERY_LEVELS)[number];
const UNIQUE: Record<QueryLevel, string[]> = {
  PATIENT: [],
  STUDY: ['StudyInstanceUID'],
  SERIES: ['StudyInstanceUID', 'SeriesInstanceUID'],
  IMAGE: ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'],
};
/** The values each level answers, and the field of the instance they come from. */
const RETURNED: Record<QueryLevel, [string, keyof SyntheticInstance][]> = {
  PATIENT: [['PatientName', 'patientName']],
  STUDY: [['PatientName', 'patientName'], ['StudyDescription', 'studyDescription'], ['AccessionNumber', 'accessionNumber'], ['ModalitiesInStudy', 'modality']],
  SERIES: [['PatientName', 'patientName'], ['StudyDescription', 'studyDescription'], ['AccessionNumber', 'accessionNumber'], ['Modality', 'modality']],
  IMAGE: [['PatientName', 'patientName'], ['StudyDescription', 'studyDescription'], ['AccessionNumber', 'accessionNumber'], ['Modality', 'modality']],
};

let orthanc: RunningOrthanc;
let work: string;
let A: Tenant;
let B: Tenant;
const outcomes = new Map<string, { first: SyntheticInstance; second: SyntheticInstance; markedWhileShared: boolean; findings: string[] }>();

async function write(scenario: Scenario, index: number, side: 'first' | 'second'): Promise<SyntheticInstance> {
  const values = VALUES[side];
  const root = `${ROOT}.${index + 1}`;
  const part = side === 'first' ? 1 : 2;
  return writeInstance(join(work, scenario.key, side), {
    patientId: `DEL-${scenario.key}`,
    patientName: values.name,
    specificCharacterSet: values.charset,
    studyInstanceUid: scenario.shares === 'patient' ? `${root}.1.${part}` : `${root}.1`,
    seriesInstanceUid: scenario.shares === 'series' ? `${root}.2` : `${root}.2.${part}`,
    sopInstanceUid: `${root}.3.${part}`,
    modality: values.modality,
    sopClassUid: SOP_CLASS[values.modality],
    studyDescription: values.description,
    accessionNumber: values.accession,
  });
}

async function store(through: Tenant | undefined, instance: SyntheticInstance): Promise<void> {
  const [calledAet, port] = through === undefined ? ['ORTHANC', orthanc.dicomPort] : [through.aet, through.port];
  const result = await storescu({ callingAet: CALLING, calledAet, port, files: [instance.path] });
  if (result.code !== 0) throw new Error(`storescu to ${calledAet} failed: ${result.stderr}`);
}

async function patientLabels(instance: SyntheticInstance): Promise<string[]> {
  const response = await orthanc.rest<string[]>('GET', `/patients/${orthancIds(instance).patient}/labels`);
  return response.status === 200 ? response.body : [];
}

/** Waits for a condition of Orthanc's state, polling; fails with `what` after a minute. */
async function waitFor(what: string, condition: () => Promise<boolean>): Promise<void> {
  for (const started = Date.now(); Date.now() - started < 60_000; await sleep(100)) {
    if (await condition()) return;
  }
  throw new Error(`timed out waiting for ${what}`);
}

function find(through: Tenant, level: QueryLevel, keys: string[]) {
  return findscu({ callingAet: CALLING, calledAet: through.aet, port: through.port, level, keys });
}

const TAG: Record<string, string> = {
  PatientName: '0010,0010',
  StudyDescription: '0008,1030',
  AccessionNumber: '0008,0050',
  ModalitiesInStudy: '0008,0061',
  Modality: '0008,0060',
};

const probe = (keyword: string, value: string) => (keyword === 'PatientName' ? `PatientName=${value.split('^')[0]}*` : `${keyword}=${value}`);

/** Every finding through B and A, once the first sender's part is deleted and the patient rebuilt. */
async function check(first: SyntheticInstance, second: SyntheticInstance): Promise<string[]> {
  const findings: string[] = [];
  for (const level of QUERY_LEVELS) {
    const keys = [`PatientID=${second.patientId}`, ...UNIQUE[level]];
    const result = await find(B, level, [...keys, ...RETURNED[level].map(([keyword]) => keyword)]);
    if (result.answers.length !== 1) findings.push(`B ${level}: ${result.answers.length} answers, expected 1`);
    for (const answer of result.answers) {
      for (const [keyword, field] of RETURNED[level]) {
        const got = dicomStrings(answer, TAG[keyword]!).join('\\');
        if (got === String(second[field])) continue;
        findings.push(
          got === String(first[field])
            ? `LEAK B ${level}: ${keyword} is the deleted instance's (${got}), B's is ${String(second[field])}`
            : `B ${level}: ${keyword} [${got}], expected ${String(second[field])}`,
        );
      }
    }
    for (const [keyword, field] of RETURNED[level]) {
      if (first[field] === second[field]) continue;
      const own = await find(B, level, [...keys, probe(keyword, String(second[field]))]);
      if (own.answers.length !== 1) findings.push(`B ${level} ${probe(keyword, String(second[field]))} (B's own value): ${own.answers.length} answers, expected 1`);
      const deleted = await find(B, level, [...keys, probe(keyword, String(first[field]))]);
      if (deleted.answers.length > 0) findings.push(`LEAK B ${level} ${probe(keyword, String(first[field]))} (the deleted instance's value): finds B's resource`);
    }
    const throughA = await find(A, level, keys);
    if (throughA.answers.length > 0) findings.push(`LEAK A ${level}: ${throughA.answers.length} answers, A holds nothing any more`);
  }
  return findings;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'deletion-test-'));
  A = { aet: 'DEL_A', port: await freePort() };
  B = { aet: 'DEL_B', port: await freePort() };
  orthanc = await startOrthanc({
    configuration: {
      HttpPort: await freePort(),
      DicomPort: await freePort(),
      // Answers in UTF-8: the names are Latin and Greek.
      DefaultEncoding: 'Utf8',
      DicomModalities: { tester: { AET: CALLING, Host: '127.0.0.1', Port: 104 } },
      ...multitenantSection(
        { AET: A.aet, Port: A.port, Labels: ['del_a'], LabelsStoreLevels: LEVELS },
        { AET: B.aet, Port: B.port, Labels: ['del_b'], LabelsStoreLevels: LEVELS },
      ),
    },
    plugins: [PLUGIN_PATH],
    waitForPorts: [A.port, B.port],
  });
  for (const [index, scenario] of SCENARIOS.entries()) {
    const first = await write(scenario, index, 'first');
    const second = await write(scenario, index, 'second');
    await store(scenario.firstThrough === 'A' ? A : undefined, first);
    await store(B, second);
    // The durable record of the shared patient, set moments after the second store.
    let markedWhileShared = true;
    await waitFor(`the patient of ${scenario.key} to be marked ${MIXED}`, async () => (await patientLabels(second)).includes(MIXED)).catch(() => {
      markedWhileShared = false;
    });
    const ids = orthancIds(first);
    const target = { studies: ids.study, series: ids.series, instances: ids.instance }[scenario.deleteLevel];
    const deleted = await orthanc.rest('DELETE', `/${scenario.deleteLevel}/${target}`);
    if (deleted.status !== 200) throw new Error(`DELETE /${scenario.deleteLevel}/${target}: HTTP ${deleted.status}`);
    await waitFor(`the patient of ${scenario.key} to be rebuilt (label ${MIXED} removed)`, async () => !(await patientLabels(second)).includes(MIXED));
    outcomes.set(scenario.key, { first, second, markedWhileShared, findings: await check(first, second) });
  }
}, 600_000);

afterAll(async () => {
  await stopAllOrthancs();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('another sender\'s part deleted from what a tenant shares', () => {
  for (const scenario of SCENARIOS) {
    describe(scenario.title, () => {
      it(`while shared, the patient carries "${MIXED}" (a record in Orthanc's database)`, () => {
        expect(outcomes.get(scenario.key)!.markedWhileShared).toBe(true);
      });

      it('afterwards, at every level through B: B\'s values only, B\'s own values match, the deleted values find nothing; through A: nothing', () => {
        expect(outcomes.get(scenario.key)!.findings).toEqual([]);
      });
    });
  }
});
