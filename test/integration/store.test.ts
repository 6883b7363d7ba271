// C-STORE through a tenant (src/store.ts): the instance is stored as received, then
// labelled with every label of the tenant at exactly its LabelsStoreLevels; a store
// that cannot be labelled fails and leaves nothing new behind.
//
// Five Orthancs, started side by side:
// - "matrix": one tenant per LabelsConstraint x LabelsStoreLevels (the 15 non-empty
//   subsets of the 4 levels, and the key absent), plus a tenant for the character sets;
// - "stock": the same tenants served by Orthanc's stock C++ plugin, as the oracle;
// - "shared": tenants for parallel stores, stores of an instance already there, and two
//   tenants storing into the same study;
// - "faulty": MTD_FAULT_INJECTION=labelWrite:3, the label write after the instance's two fails;
// - "overwriting": the same, with OverwriteInstances true;
// - "second" and "last": a tenant whose isolation is as fine as the series (two labels,
//   LabelsStoreLevels Study and Series), whose second or last label write fails, after
//   the earlier ones succeeded on a series and a study another sender created.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool, storescu, type DcmtkResult } from '../support/dcmtk.js';
import {
  CHARACTER_SETS,
  encodeText,
  orthancIds,
  PATIENT_NAMES,
  writeDataset,
  writeInstance,
  type DatasetSpec,
  type SyntheticInstance,
} from '../support/dataset.js';
import { freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { literal, multitenantSection, PLUGIN_PATH, STOCK_PLUGIN_PATH, tenantName } from '../support/plugin.js';

const LEVELS = ['Patient', 'Study', 'Series', 'Instance'] as const;
type Level = (typeof LEVELS)[number];
type Constraint = 'All' | 'Any' | 'None';

const DEFAULT_LEVELS: Level[] = ['Study', 'Series', 'Instance'];
const URI: Record<Level, string> = { Patient: 'patients', Study: 'studies', Series: 'series', Instance: 'instances' };
const CALLING_AET = 'STORE_TEST';

// Every port here is distinct and outside the ephemeral range (see freePort).
const uniquePort = freePort;

// ---------------------------------------------------------------------------------------
// Tenants.

interface Tenant {
  aet: string;
  port: number;
  labels: string[];
  constraint: Constraint;
  /** undefined: no "LabelsStoreLevels" key. */
  levels: Level[] | undefined;
  /** undefined: no "ForeignInstances" key ("Reject"). */
  foreignInstances?: 'Reject' | 'Share';
}

function serverEntry(tenant: Tenant): Record<string, unknown> {
  return {
    AET: tenant.aet,
    Port: tenant.port,
    Labels: tenant.labels,
    LabelsConstraint: tenant.constraint,
    ...(tenant.levels === undefined ? {} : { LabelsStoreLevels: tenant.levels }),
    ...(tenant.foreignInstances === undefined ? {} : { ForeignInstances: tenant.foreignInstances }),
  };
}

const effectiveLevels = (tenant: Tenant): Level[] => tenant.levels ?? DEFAULT_LEVELS;

async function tenant(aet: string, fields: Partial<Omit<Tenant, 'aet' | 'port'>> = {}): Promise<Tenant> {
  const stem = aet.toLowerCase();
  return { aet, port: await uniquePort(), labels: [`${stem}_1`, `${stem}_2`], constraint: 'All', levels: undefined, ...fields };
}

/** The 15 non-empty subsets of the levels, in canonical order. */
const SUBSETS: Level[][] = Array.from({ length: 15 }, (_, i) => LEVELS.filter((_, bit) => ((i + 1) >> bit) & 1));
const LEVEL_LETTER: Record<Level, string> = { Patient: 'P', Study: 'T', Series: 'E', Instance: 'I' };
const describeLevels = (levels: Level[] | undefined) => (levels === undefined ? 'key absent' : `[${levels.join(', ')}]`);

async function matrixTenants(): Promise<Tenant[]> {
  const tenants: Tenant[] = [];
  for (const constraint of ['All', 'Any', 'None'] as const) {
    for (const levels of [undefined, ...SUBSETS]) {
      const suffix = levels === undefined ? 'DEFAULT' : levels.map((level) => LEVEL_LETTER[level]).join('');
      tenants.push(await tenant(`${constraint.toUpperCase()}_${suffix}`, { constraint, levels }));
    }
  }
  return tenants;
}

// ---------------------------------------------------------------------------------------
// Stores and labels.

async function store(port: number, calledAet: string, files: string[]): Promise<DcmtkResult> {
  return storescu({ port, calledAet, callingAet: CALLING_AET, files, timeoutMs: 60_000 });
}

const storeThrough = (orthanc: RunningOrthanc, tenant: Tenant | undefined, files: string[]) =>
  tenant === undefined ? store(orthanc.dicomPort, 'ORTHANC', files) : store(tenant.port, tenant.aet, files);

function describeResult(result: DcmtkResult): string {
  return `storescu exit code ${result.code}:\n${result.stdout}${result.stderr}`;
}

/** Every resource of these instances, keyed by level and DICOM identifier (readable diffs). */
function resourcesOf(instances: SyntheticInstance[]): Map<string, { level: Level; id: string }> {
  const resources = new Map<string, { level: Level; id: string }>();
  for (const instance of instances) {
    const ids = orthancIds(instance);
    resources.set(`Patient ${instance.patientId}`, { level: 'Patient', id: ids.patient });
    resources.set(`Study ${instance.studyInstanceUid}`, { level: 'Study', id: ids.study });
    resources.set(`Series ${instance.seriesInstanceUid}`, { level: 'Series', id: ids.series });
    resources.set(`Instance ${instance.sopInstanceUid}`, { level: 'Instance', id: ids.instance });
  }
  return resources;
}

/** The labels of each resource ("missing" if Orthanc does not have it). */
async function labelsOf(orthanc: RunningOrthanc, instances: SyntheticInstance[]): Promise<Record<string, string[] | 'missing'>> {
  const entries = await Promise.all(
    [...resourcesOf(instances)].map(async ([key, { level, id }]) => {
      const response = await orthanc.rest<{ Labels: string[] }>('GET', `/${URI[level]}/${id}`);
      if (response.status === 404) return [key, 'missing'] as const;
      expect(response.status, `GET /${URI[level]}/${id}`).toBe(200);
      return [key, [...response.body.Labels].sort()] as const;
    }),
  );
  return Object.fromEntries(entries);
}

/** The labels of every resource Orthanc has, by Orthanc ID (4 requests, for the whole-Orthanc checks). */
async function allLabels(orthanc: RunningOrthanc): Promise<Map<string, string[]>> {
  const labels = new Map<string, string[]>();
  for (const level of LEVELS) {
    const response = await orthanc.rest<{ ID: string; Labels: string[] }[]>('GET', `/${URI[level]}?expand`);
    expect(response.status).toBe(200);
    for (const resource of response.body) {
      expect(resource.Labels, `${level} ${resource.ID}`).toBeInstanceOf(Array);
      labels.set(resource.ID, [...resource.Labels].sort());
    }
  }
  return labels;
}

/** labelsOf, from allLabels. */
function labelsIn(labels: Map<string, string[]>, instances: SyntheticInstance[]): Record<string, string[] | 'missing'> {
  return Object.fromEntries([...resourcesOf(instances)].map(([key, { id }]) => [key, labels.get(id) ?? 'missing']));
}

/** What labelsOf should give when these tenants stored these instances. */
function expectedLabels(instances: SyntheticInstance[], ...tenants: Tenant[]): Record<string, string[]> {
  return Object.fromEntries(
    [...resourcesOf(instances)].map(([key, { level }]) => [
      key,
      tenants.flatMap((tenant) => (effectiveLevels(tenant).includes(level) ? tenant.labels : [])).sort(),
    ]),
  );
}

/** The IDs Orthanc has at a level. */
async function idsAt(orthanc: RunningOrthanc, level: Level): Promise<string[]> {
  const response = await orthanc.rest<string[]>('GET', `/${URI[level]}`);
  expect(response.status).toBe(200);
  return [...response.body].sort();
}

// ---------------------------------------------------------------------------------------
// The Orthancs and the data, prepared side by side.

let directory: string;
let matrix: RunningOrthanc;
let stock: RunningOrthanc;
let shared: RunningOrthanc;
let faulty: RunningOrthanc;
let overwriting: RunningOrthanc;
let failingSecond: RunningOrthanc;
let failingLast: RunningOrthanc;

let MATRIX: Tenant[];
let STOCK_MATRIX: Tenant[];
let CHARSETS: Tenant;
let PARALLEL: Tenant;
let TWICE: Tenant;
let REJECTING: Tenant;
let FIRST: Tenant;
let SECOND: Tenant;
let FAULTY: Tenant;
let OVERWRITING: Tenant;
let COARSE_SECOND: Tenant;
let COARSE_LAST: Tenant;

let matrixData: Promise<SyntheticInstance[][]>;

/** Labels every resource of the "matrix" Orthanc must have, filled in by the tests that store there. */
const matrixExpectations: Record<string, string[]> = {};
const matrixInstances: SyntheticInstance[] = [];

const dataset = (name: string, spec: Omit<DatasetSpec, 'prefix'>) =>
  writeDataset(join(directory, name), { prefix: `store-${name}`, transferSyntax: 'mixed', ...spec });

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'store-test-'));
  MATRIX = await matrixTenants();
  // The stock plugin gets the same tenants on other ports.
  STOCK_MATRIX = [];
  for (const tenant of MATRIX) STOCK_MATRIX.push({ ...tenant, port: await uniquePort() });
  CHARSETS = await tenant('CHARSETS');
  PARALLEL = await tenant('PARALLEL');
  // "Share": the stock plugin's behaviour with instances Orthanc already holds.
  TWICE = await tenant('TWICE', { foreignInstances: 'Share' });
  REJECTING = await tenant('REJECTING');
  FIRST = await tenant('FIRST', { labels: ['first'] });
  SECOND = await tenant('SECOND', { labels: ['second_a', 'second_b'], levels: [...LEVELS] });
  FAULTY = await tenant('FAULTY', { foreignInstances: 'Share' });
  OVERWRITING = await tenant('OVERWRITING', { foreignInstances: 'Share' });
  COARSE_SECOND = await tenant('COARSE_SECOND', { labels: ['coarse_1', 'coarse_2'], levels: ['Study', 'Series'], foreignInstances: 'Share' });
  COARSE_LAST = await tenant('COARSE_LAST', { labels: ['coarse_1', 'coarse_2'], levels: ['Study', 'Series'], foreignInstances: 'Share' });

  const start = async (tenants: Tenant[], plugin: string, configuration: Record<string, unknown> = {}, env = {}) =>
    startOrthanc({
      configuration: {
        HttpPort: await uniquePort(),
        DicomPort: await uniquePort(),
        ...multitenantSection(...(tenants.map(serverEntry) as never[])),
        ...configuration,
      },
      plugins: [plugin],
      env,
      waitForPorts: tenants.map((tenant) => tenant.port),
    });
  // Written while the Orthancs start.
  matrixData = Promise.all(
    MATRIX.map((tenant) => dataset(tenant.aet, { patients: 1, studiesPerPatient: 1, seriesPerStudy: 2, instancesPerSeries: 2 })),
  );
  matrixData.catch(() => {}); // awaited (and reported) by the tests that use it
  [matrix, stock, shared, faulty, overwriting, failingSecond, failingLast] = await Promise.all([
    start([...MATRIX, CHARSETS], PLUGIN_PATH),
    start(STOCK_MATRIX, STOCK_PLUGIN_PATH),
    // Enough threads for every parallel association to be served at once.
    start([PARALLEL, TWICE, FIRST, SECOND, REJECTING], PLUGIN_PATH, { DicomThreadsCount: 24 }),
    start([FAULTY], PLUGIN_PATH, {}, { MTD_FAULT_INJECTION: 'labelWrite:3' }),
    start([OVERWRITING], PLUGIN_PATH, { OverwriteInstances: true }, { MTD_FAULT_INJECTION: 'labelWrite:3' }),
    start([COARSE_SECOND], PLUGIN_PATH, {}, { MTD_FAULT_INJECTION: 'labelWrite:2' }),
    start([COARSE_LAST], PLUGIN_PATH, {}, { MTD_FAULT_INJECTION: 'labelWrite:last' }),
  ]);
});

afterAll(async () => {
  // The stock plugin takes more than 30 s to stop its 48 servers; its exit is not under test.
  await stock?.stop('SIGKILL');
  await stopAllOrthancs();
  if (directory !== undefined) await rm(directory, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------

describe('C-STORE through a tenant labels exactly its LabelsStoreLevels, with all its labels', () => {
  // Each tenant stores its own patient (1 study, 2 series of 2 instances: the second
  // instance of a series finds its parents labelled already) into both Orthancs.
  const stored = new Map<string, { instances: SyntheticInstance[]; ours: DcmtkResult; theirs: DcmtkResult }>();

  beforeAll(async () => {
    await Promise.all(
      MATRIX.map(async (tenant, i) => {
        const instances = (await matrixData)[i]!;
        const files = instances.map((instance) => instance.path);
        const [ours, theirs] = await Promise.all([
          storeThrough(matrix, tenant, files),
          storeThrough(stock, STOCK_MATRIX[i]!, files),
        ]);
        stored.set(tenant.aet, { instances, ours, theirs });
        matrixInstances.push(...instances);
        Object.assign(matrixExpectations, expectedLabels(instances, tenant));
      }),
    );
  });

  it.each([
    ...(['All', 'Any', 'None'] as const).flatMap((constraint) =>
      [undefined, ...SUBSETS].map((levels) => ({ constraint, levels, description: describeLevels(levels) })),
    ),
  ])('LabelsConstraint $constraint, LabelsStoreLevels $description', async ({ constraint, levels }) => {
    // The constraint restricts C-FIND and C-MOVE only: with "None" too, a store writes the
    // tenant's labels, as the stock plugin does.
    const tenant = MATRIX.find((t) => t.constraint === constraint && describeLevels(t.levels) === describeLevels(levels))!;
    const { instances, ours } = stored.get(tenant.aet)!;
    expect(ours.ok, describeResult(ours)).toBe(true);
    expect(await labelsOf(matrix, instances)).toEqual(expectedLabels(instances, tenant));
  });

  it('labels the same resources as the stock plugin, for every tenant', async () => {
    for (const { theirs } of stored.values()) expect(theirs.ok, describeResult(theirs)).toBe(true);
    const instances = [...stored.values()].flatMap((entry) => entry.instances);
    const [ours, theirs] = await Promise.all([allLabels(matrix), allLabels(stock)]);
    expect(labelsIn(ours, instances)).toEqual(labelsIn(theirs, instances));
  });
});

describe('C-STORE to Orthanc\'s own DICOM port', () => {
  it('adds no label', async () => {
    const instances = await dataset('main-port', { patients: 2, studiesPerPatient: 1, seriesPerStudy: 2, instancesPerSeries: 2 });
    const result = await storeThrough(matrix, undefined, instances.map((instance) => instance.path));
    expect(result.ok, describeResult(result)).toBe(true);
    matrixInstances.push(...instances);
    Object.assign(matrixExpectations, expectedLabels(instances));
    expect(await labelsOf(matrix, instances)).toEqual(expectedLabels(instances));
  });
});

describe('character sets', () => {
  it('every patient name stored through a tenant decodes to its UTF-8 text, its bytes unchanged', async () => {
    // 25 patients: every name of every character set (the sets cycle over the patients).
    const names = Object.values(PATIENT_NAMES).flat();
    const instances = await dataset('charsets', { patients: names.length, studiesPerPatient: 1, seriesPerStudy: 1, instancesPerSeries: 1 });
    expect(new Set(instances.map((instance) => instance.specificCharacterSet))).toEqual(new Set(CHARACTER_SETS));
    expect(instances.map((instance) => instance.patientName).sort()).toEqual([...names].sort());

    const result = await storeThrough(matrix, CHARSETS, instances.map((instance) => instance.path));
    expect(result.ok, describeResult(result)).toBe(true);
    matrixInstances.push(...instances);
    Object.assign(matrixExpectations, expectedLabels(instances, CHARSETS));

    const seen = await Promise.all(
      instances.map(async (instance) => {
        const ids = orthancIds(instance);
        const patient = await matrix.rest<{ MainDicomTags: { PatientName: string } }>('GET', `/patients/${ids.patient}`);
        const study = await matrix.rest<{ PatientMainDicomTags: { PatientName: string } }>('GET', `/studies/${ids.study}`);
        const raw = await matrix.rest<Buffer>('GET', `/instances/${ids.instance}/content/0010,0010`);
        return {
          characterSet: instance.specificCharacterSet,
          patient: patient.body.MainDicomTags.PatientName,
          study: study.body.PatientMainDicomTags.PatientName,
          // The value as stored, without the padding to an even length.
          bytes: Buffer.from(raw.body).toString('hex').replace(/(20|00)$/, ''),
        };
      }),
    );
    expect(seen).toEqual(
      instances.map((instance) => ({
        characterSet: instance.specificCharacterSet,
        patient: instance.patientName,
        study: instance.patientName,
        bytes: encodeText(instance.patientName, instance.specificCharacterSet).toString('hex'),
      })),
    );
    expect(await labelsOf(matrix, instances)).toEqual(expectedLabels(instances, CHARSETS));
  });
});

describe('the "matrix" Orthanc', () => {
  it('has no resource, and no label, other than those the tests above expect', async () => {
    const labels = await allLabels(matrix);
    expect([...labels.keys()].sort()).toEqual([...new Set([...resourcesOf(matrixInstances).values()].map(({ id }) => id))].sort());
    expect(labelsIn(labels, matrixInstances)).toEqual(matrixExpectations);
  });
});

// ---------------------------------------------------------------------------------------

describe('concurrent stores', () => {
  it('twenty parallel associations into the same new study all succeed, and everything ends labelled', async () => {
    // 4 series of 5 instances: the associations race to create the patient, the study and
    // each series.
    const instances = await dataset('parallel', { patients: 1, studiesPerPatient: 1, seriesPerStudy: 4, instancesPerSeries: 5 });
    expect(instances).toHaveLength(20);
    const since = shared.log().length;
    const results = await Promise.all(instances.map((instance) => storeThrough(shared, PARALLEL, [instance.path])));
    for (const result of results) expect(result.ok, describeResult(result)).toBe(true);

    expect(await labelsOf(shared, instances)).toEqual(expectedLabels(instances, PARALLEL));
    const study = await shared.rest<unknown[]>('GET', `/studies/${orthancIds(instances[0]!).study}/instances`);
    expect(study.body).toHaveLength(20);
    // Each new series' labels are read once, by the store that labels it first; the stores
    // that waited for it meanwhile know them labelled (Orthanc's verbose log names each call).
    const log = shared.log().slice(since);
    const seriesIds = [...new Set(instances.map((instance) => orthancIds(instance).series))];
    const readsOf = (id: string) => log.split(`REST GET call on URI /series/${id}/labels`).length - 1;
    expect(seriesIds.map(readsOf)).toEqual(seriesIds.map(() => 1));
  });
});

describe('an instance Orthanc has already (AlreadyStored)', () => {
  it('stored twice through the tenant: both stores succeed, the labels stay as configured', async () => {
    const instances = await dataset('twice', { patients: 1, studiesPerPatient: 1, seriesPerStudy: 1, instancesPerSeries: 2 });
    const files = instances.map((instance) => instance.path);
    const first = await storeThrough(shared, TWICE, files);
    expect(first.ok, describeResult(first)).toBe(true);
    const second = await storeThrough(shared, TWICE, files);
    expect(second.ok, describeResult(second)).toBe(true);
    expect(await labelsOf(shared, instances)).toEqual(expectedLabels(instances, TWICE));
  });

  it('stored first through the main port, then through a tenant that refuses foreign instances (the default): refused, nothing changes', async () => {
    const instances = await dataset('main-then-rejecting', { patients: 1, studiesPerPatient: 1, seriesPerStudy: 1, instancesPerSeries: 2 });
    const files = instances.map((instance) => instance.path);
    const main = await storeThrough(shared, undefined, files);
    expect(main.ok, describeResult(main)).toBe(true);
    const refused = await runTool('storescu', ['-v', '-aet', CALLING_AET, '-aec', REJECTING.aet, '127.0.0.1', String(REJECTING.port), ...files]);
    // 0x0124, "Refused: Not Authorized" (storescu does not name it).
    expect(refused.stderr, describeResult(refused)).toMatch(/Received Store Response \(Unknown Status: 0x124\)/);
    expect(await labelsOf(shared, instances)).toEqual(expectedLabels(instances));
  });

  it('stored first through the main port, then through a tenant with "ForeignInstances": "Share": the tenant\'s store labels it', async () => {
    const instances = await dataset('main-then-tenant', { patients: 1, studiesPerPatient: 1, seriesPerStudy: 1, instancesPerSeries: 2 });
    const files = instances.map((instance) => instance.path);
    const main = await storeThrough(shared, undefined, files);
    expect(main.ok, describeResult(main)).toBe(true);
    expect(await labelsOf(shared, instances)).toEqual(expectedLabels(instances));

    const again = await storeThrough(shared, TWICE, files);
    expect(again.ok, describeResult(again)).toBe(true);
    expect(await labelsOf(shared, instances)).toEqual(expectedLabels(instances, TWICE));
  });

  it('deleted, then sent again through the tenant: labelled again (the label cache forgets deleted resources)', async () => {
    const instances = await dataset('deleted', { patients: 1, studiesPerPatient: 1, seriesPerStudy: 1, instancesPerSeries: 1 });
    const files = instances.map((instance) => instance.path);
    const first = await storeThrough(shared, TWICE, files);
    expect(first.ok, describeResult(first)).toBe(true);
    expect(await labelsOf(shared, instances)).toEqual(expectedLabels(instances, TWICE));

    const deleted = await shared.rest('DELETE', `/patients/${orthancIds(instances[0]!).patient}`);
    expect(deleted.status).toBe(200);
    const again = await storeThrough(shared, TWICE, files);
    expect(again.ok, describeResult(again)).toBe(true);
    expect(await labelsOf(shared, instances)).toEqual(expectedLabels(instances, TWICE));
  });

  // Orthanc reports no change when a label is removed: a store into a study and series
  // this process knows labelled (native/known_labels.h) puts their labels again.
  it('a study and series whose labels were removed through REST are labelled again by the next store', async () => {
    const [one, two] = await dataset('relabel', { patients: 1, studiesPerPatient: 1, seriesPerStudy: 1, instancesPerSeries: 2 });
    const first = await storeThrough(shared, TWICE, [one!.path]);
    expect(first.ok, describeResult(first)).toBe(true);
    const ids = orthancIds(one!);
    for (const label of TWICE.labels) {
      expect((await shared.rest('DELETE', `/studies/${ids.study}/labels/${label}`)).status).toBe(200);
      expect((await shared.rest('DELETE', `/series/${ids.series}/labels/${label}`)).status).toBe(200);
    }
    const second = await storeThrough(shared, TWICE, [two!.path]);
    expect(second.ok, describeResult(second)).toBe(true);
    expect(await labelsOf(shared, [two!])).toEqual(expectedLabels([two!], TWICE));
  });
});

describe('two tenants storing into the same study', () => {
  it('the second tenant adds its labels to the shared study and series as configured', async () => {
    const directoryOf = join(directory, 'two-tenants');
    const common = { patientId: 'TWO-TENANTS', patientName: 'Zweig^Zoë', specificCharacterSet: 'ISO_IR 100' };
    const study = '1.2.826.0.1.3680043.10.1234.88.1';
    const [one, two, three] = await Promise.all([
      writeInstance(directoryOf, { ...common, studyInstanceUid: study, seriesInstanceUid: `${study}.1`, sopInstanceUid: `${study}.1.1` }),
      writeInstance(directoryOf, { ...common, studyInstanceUid: study, seriesInstanceUid: `${study}.1`, sopInstanceUid: `${study}.1.2` }),
      writeInstance(directoryOf, { ...common, studyInstanceUid: study, seriesInstanceUid: `${study}.2`, sopInstanceUid: `${study}.2.1` }),
    ]);
    const first = await storeThrough(shared, FIRST, [one!.path]);
    expect(first.ok, describeResult(first)).toBe(true);
    // SECOND stores into FIRST's series, and into a new series of the same study.
    const second = await storeThrough(shared, SECOND, [two!.path, three!.path]);
    expect(second.ok, describeResult(second)).toBe(true);

    expect(await labelsOf(shared, [one!, two!, three!])).toEqual({
      'Patient TWO-TENANTS': ['second_a', 'second_b'],
      [`Study ${study}`]: ['first', 'second_a', 'second_b'],
      [`Series ${study}.1`]: ['first', 'second_a', 'second_b'],
      [`Series ${study}.2`]: ['second_a', 'second_b'],
      [`Instance ${study}.1.1`]: ['first'],
      [`Instance ${study}.1.2`]: ['second_a', 'second_b'],
      [`Instance ${study}.2.1`]: ['second_a', 'second_b'],
    });
  });
});

// ---------------------------------------------------------------------------------------

describe('a store whose labelling fails (MTD_FAULT_INJECTION=labelWrite:3)', () => {
  /** storescu -v, which reports the status of each C-STORE response. */
  const storeVerbosely = (file: string, tenant = FAULTY) =>
    runTool('storescu', ['-v', '-aet', CALLING_AET, '-aec', tenant.aet, '127.0.0.1', String(tenant.port), file]);

  function expectFailureStatus(result: DcmtkResult) {
    expect(result.code, describeResult(result)).not.toBe(0);
    // 0xA700, "Refused: Out of Resources", as Orthanc's own port answers when storing fails.
    expect(result.stderr, describeResult(result)).toMatch(/^I: Received Store Response \(Refused: OutOfResources\)$/m);
  }

  it('answers a failure status and leaves nothing: the new instance, series, study and patient are gone', async () => {
    const [instance] = await dataset('fault-new', { patients: 1, studiesPerPatient: 1, seriesPerStudy: 1, instancesPerSeries: 1 });
    const before = faulty.log().length;
    expectFailureStatus(await storeVerbosely(instance!.path));
    await faulty.waitForLog(
      literal(`${tenantName(0, FAULTY.aet)}: cannot label the instance ${orthancIds(instance!).instance} sent by ${CALLING_AET}`),
      10_000,
      before,
    );
    for (const level of LEVELS) expect(await idsAt(faulty, level), level).toEqual([]);
  });

  it('keeps what existed before: a study with another instance, and its series', async () => {
    const [one, two, three] = await dataset('fault-existing', { patients: 1, studiesPerPatient: 1, seriesPerStudy: 2, instancesPerSeries: 2 });
    // Instance 1 through the main port (no label is written there, so no fault).
    const main = await storeThrough(faulty, undefined, [one!.path]);
    expect(main.ok, describeResult(main)).toBe(true);

    // Instance 2 (same series) and 3 (a new series of the same study) through the tenant.
    expectFailureStatus(await storeVerbosely(two!.path));
    expectFailureStatus(await storeVerbosely(three!.path));

    const ids = orthancIds(one!);
    expect(await idsAt(faulty, 'Instance')).toEqual([ids.instance]);
    expect(await idsAt(faulty, 'Series')).toEqual([ids.series]);
    expect(await idsAt(faulty, 'Study')).toEqual([ids.study]);
    expect(await idsAt(faulty, 'Patient')).toEqual([ids.patient]);
    expect(await labelsOf(faulty, [one!])).toEqual(expectedLabels([one!]));
  });

  // An instance Orthanc had already is not deleted, and loses the labels the store added.
  it('an instance Orthanc had already keeps no label from a failed store', async () => {
    const [instance] = await dataset('fault-already', { patients: 1, studiesPerPatient: 1, seriesPerStudy: 1, instancesPerSeries: 1 });
    const main = await storeThrough(faulty, undefined, [instance!.path]);
    expect(main.ok, describeResult(main)).toBe(true);
    expectFailureStatus(await storeVerbosely(instance!.path));
    expect(await labelsOf(faulty, [instance!])).toEqual(expectedLabels([instance!]));
  });

  // With OverwriteInstances true, POST /instances answers "Success" for an instance Orthanc
  // had already: the store must know from its own check that the instance is not new.
  it('with OverwriteInstances true, an instance Orthanc had already is not deleted by a failed store', async () => {
    const [instance, control] = await dataset('fault-overwrite', { patients: 1, studiesPerPatient: 1, seriesPerStudy: 1, instancesPerSeries: 2 });
    for (const file of [instance!, control!]) {
      const main = await storeThrough(overwriting, undefined, [file.path]);
      expect(main.ok, describeResult(main)).toBe(true);
      const id = orthancIds(file).instance;
      expect((await overwriting.rest('PUT', `/instances/${id}/labels/other_tenant`, '')).status).toBe(200);
    }

    const result = await storeVerbosely(instance!.path, OVERWRITING);
    expectFailureStatus(result);
    // Not the tenant's: shared ("ForeignInstances": "Share") but never overwritten, so it
    // keeps the label it had.
    expect(await labelsOf(overwriting, [instance!])).toEqual({
      ...expectedLabels([instance!]),
      [`Instance ${instance!.sopInstanceUid}`]: ['other_tenant'],
    });
    expect((await overwriting.rest('GET', `/instances/${orthancIds(instance!).instance}`)).status).toBe(200);

    // Orthanc itself drops the labels of an instance it overwrites: the same happens to the
    // control instance, overwritten through the main port.
    const again = await storeThrough(overwriting, undefined, [control!.path]);
    expect(again.ok, describeResult(again)).toBe(true);
    expect(await labelsOf(overwriting, [control!])).toEqual(expectedLabels([control!]));
  });
});

describe('a store whose second or last label write fails, after earlier writes succeeded on another sender\'s series and study', () => {
  // COARSE_* store with LabelsStoreLevels Study and Series and two labels: the writes are
  // Series coarse_1, Series coarse_2, Study coarse_1, Study coarse_2. A label left on the
  // series would grant the tenant every instance of it (its isolation is as fine as the
  // series): a failed store must leave every label exactly as it was.
  for (const [position, tenantOf, orthancOf] of [
    ['second', () => COARSE_SECOND, () => failingSecond],
    ['last', () => COARSE_LAST, () => failingLast],
  ] as const) {
    it(`the ${position} write fails: the store answers a failure, the labels are as before, the other sender's instance stays out of reach`, async () => {
      const tenant = tenantOf();
      const orthanc = orthancOf();
      const [first, second] = await dataset(`fault-${position}`, { patients: 1, studiesPerPatient: 1, seriesPerStudy: 1, instancesPerSeries: 2 });
      const main = await storeThrough(orthanc, undefined, [first!.path]);
      expect(main.ok, describeResult(main)).toBe(true);
      const ids = orthancIds(first!);
      // Another sender's labels on the series and the study, which the store must keep.
      for (const uri of [`/series/${ids.series}/labels/other_sender`, `/studies/${ids.study}/labels/other_sender`]) {
        expect((await orthanc.rest('PUT', uri, '')).status, uri).toBe(200);
      }
      const before = await labelsOf(orthanc, [first!]);

      const result = await runTool('storescu', ['-v', '-aet', CALLING_AET, '-aec', tenant.aet, '127.0.0.1', String(tenant.port), second!.path]);
      expect(result.code, describeResult(result)).not.toBe(0);
      expect(result.stderr, describeResult(result)).toMatch(/^I: Received Store Response \(Refused: OutOfResources\)$/m);

      expect(await labelsOf(orthanc, [first!]), 'the labels of the series, study and patient').toEqual(before);
      expect(before[`Series ${first!.seriesInstanceUid}`]).toEqual(['other_sender']);
      expect(await idsAt(orthanc, 'Instance'), 'the new instance is gone').toEqual([ids.instance]);
      const found = await runTool('findscu', ['-S', '-aet', CALLING_AET, '-aec', tenant.aet, '-k', 'QueryRetrieveLevel=IMAGE', '-k', `StudyInstanceUID=${first!.studyInstanceUid}`, '-k', 'SOPInstanceUID', '127.0.0.1', String(tenant.port)]);
      expect(found.code, found.stderr).toBe(0);
      expect(found.stderr + found.stdout, 'nothing of the series through the tenant').not.toMatch(/Find Response: \d+ \(Pending\)/);
    });
  }
});
