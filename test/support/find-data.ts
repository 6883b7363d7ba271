// The C-FIND scenario shared by the differential tests (find.test.ts, stock-plugin.test.ts):
// a synthetic data set stored through several tenants and Orthanc's own port, C-FIND
// queries sent as query files (so that their values are the bytes of the declared
// SpecificCharacterSet), and the comparison of a tenant's answers with those of Orthanc's
// own C-FIND SCP restricted to the tenant.
//
// The oracle of a tenant is a reference Orthanc (no plugin, the same configuration) that
// holds only the tenant's own instances: a tenant answers what that Orthanc's C-FIND SCP
// answers, restricted to the resources whose labels (in the tenant's Orthanc) satisfy the
// tenant's constraint at the query level. For a resource that holds only the tenant's
// instances this is exactly the answer of the tenant's Orthanc's own C-FIND SCP; for a
// resource shared with other tenants or with Orthanc's own port (a patient, or a study
// whose series came through two tenants), values and counters come from the tenant's
// instances only (src/find-entitled.ts).
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { runTool, storescu, type DcmtkResult } from './dcmtk.js';
import { encodeText, writeDataset, writeInstance, type SyntheticInstance } from './dataset.js';
import { freePort, startOrthanc, type RunningOrthanc } from './orthanc.js';

// ---------------------------------------------------------------------------------------
// Tenants.

export type Constraint = 'All' | 'Any' | 'None';

export interface TenantSpec {
  key: string; // how the scenario names it ("A", "B", ...)
  aet: string;
  labels: string[];
  constraint: Constraint;
  storeLevels?: string[];
}

/**
 * A and B store; the other two only query. A labels the four levels (so patients are
 * labelled), B the default levels (Study, Series, Instance).
 */
export const TENANTS: readonly TenantSpec[] = [
  { key: 'A', aet: 'TENANT_A', labels: ['a'], constraint: 'All', storeLevels: ['Patient', 'Study', 'Series', 'Instance'] },
  { key: 'B', aet: 'TENANT_B', labels: ['b'], constraint: 'All' },
  { key: 'ANY_AB', aet: 'TENANT_ANY', labels: ['a', 'b'], constraint: 'Any' },
  { key: 'NOT_A', aet: 'TENANT_NOT_A', labels: ['a'], constraint: 'None' },
];

export const MAIN_AET = 'ORTHANC';
export const CALLING_AET = 'FINDSCU';

export interface Deployment {
  orthanc: RunningOrthanc;
  /** The port of each tenant, by key. */
  ports: Record<string, number>;
}

/** One Orthanc with the tenants of TENANTS, a plugin and extra configuration. */
export async function startDeployment(plugin: string, configuration: Record<string, unknown> = {}): Promise<Deployment> {
  const ports: Record<string, number> = {};
  for (const tenant of TENANTS) ports[tenant.key] = await freePort();
  const servers = TENANTS.map((tenant) => ({
    AET: tenant.aet,
    Port: ports[tenant.key],
    Labels: tenant.labels,
    LabelsConstraint: tenant.constraint,
    ...(tenant.storeLevels === undefined ? {} : { LabelsStoreLevels: tenant.storeLevels }),
  }));
  const orthanc = await startOrthanc({
    configuration: {
      DicomAet: MAIN_AET,
      DicomAlwaysAllowFind: false,
      DicomModalities: {
        finder: { AET: CALLING_AET, Host: '127.0.0.1', Port: 104 },
        nofind: { AET: 'NOFIND', Host: '127.0.0.1', Port: 104, AllowFind: false },
        lua: { AET: 'LUAFIND', Host: '127.0.0.1', Port: 104 },
      },
      ...configuration,
      MultitenantDicom: { Servers: servers },
    },
    plugins: [plugin],
    waitForPorts: Object.values(ports),
  });
  return { orthanc, ports };
}

// ---------------------------------------------------------------------------------------
// The data set.

/** Where an instance is stored: a tenant (by key) or Orthanc's own port. */
export type Route = 'A' | 'B' | 'main';

export interface PlacedInstance extends SyntheticInstance {
  route: Route;
}

/** Known handmade values the queries refer to. */
export const EXTRA = {
  caseUpper: { patientId: 'CF-CASE', patientName: 'doe^jane', accessionNumber: 'acc-lower', studyDescription: 'chest ct' },
  caseLower: { patientId: 'cf-case', patientName: 'DOE^JANE', accessionNumber: 'ACC-LOWER', studyDescription: 'Chest CT' },
  utf8Muller: { patientId: 'CF-UTF8', patientName: 'Müller^Anna' },
  extra: {
    patientId: 'CF-EXTRA',
    studyInstanceUid: '1.2.826.0.1.3680043.10.1234.77.1',
    acquisitionDateTime: '20210315103000',
    timezone: '+0100',
    referringPhysician: 'House^Gregory',
    imageType: 'ORIGINAL\\PRIMARY\\AXIAL',
    modelName: 'Modèle',
  },
} as const;

const EXTRA_ROOT = '1.2.826.0.1.3680043.10.1234.77';

/**
 * 10 patients (names in the default repertoire, ISO_IR 100, ISO_IR 192, ISO_IR 144 and
 * ISO_IR 126), 2 studies each, 2 series per study (CT, MR, US, CR, OT, DX, NM in turn),
 * one instance per series, then a few handmade instances: case variants of PatientID,
 * PatientName, AccessionNumber and StudyDescription, the same Latin name in UTF-8, and a
 * CT+MR study in UTF-8 whose instances have tags written by dcmodify (a sequence, a
 * date-time, a time zone offset, a multi-valued ImageType, a non-ASCII ManufacturerModelName).
 * Study g goes through A (g % 4 = 0), B (1), Orthanc's own port (2), or A for its first
 * series and B for its second (3).
 */
export async function writeScenario(directory: string): Promise<PlacedInstance[]> {
  const instances = await writeDataset(join(directory, 'dataset'), {
    prefix: '31337',
    patients: 10,
    studiesPerPatient: 2,
    seriesPerStudy: 2,
    instancesPerSeries: 1,
  });
  const studies = [...new Set(instances.map((instance) => instance.studyInstanceUid))];
  const placed: PlacedInstance[] = instances.map((instance) => {
    const g = studies.indexOf(instance.studyInstanceUid);
    const routes: Route[][] = [['A', 'A'], ['B', 'B'], ['main', 'main'], ['A', 'B']];
    return { ...instance, route: routes[g % 4]![Number(instance.seriesNumber) - 1]! };
  });

  const extras = join(directory, 'extra');
  const add = async (route: Route, fields: Partial<SyntheticInstance> & { sopInstanceUid: string }) => {
    placed.push({ ...(await writeInstance(extras, fields)), route });
  };
  await add('A', {
    ...EXTRA.caseUpper,
    sopInstanceUid: `${EXTRA_ROOT}.3.1`,
    studyInstanceUid: `${EXTRA_ROOT}.11`,
    seriesInstanceUid: `${EXTRA_ROOT}.21`,
    modality: 'CT',
    studyDate: '20190620',
    studyTime: '093000',
  });
  await add('A', {
    ...EXTRA.caseLower,
    sopInstanceUid: `${EXTRA_ROOT}.3.2`,
    studyInstanceUid: `${EXTRA_ROOT}.12`,
    seriesInstanceUid: `${EXTRA_ROOT}.22`,
    modality: 'CT',
    studyDate: '20190621',
    studyTime: '143000',
  });
  await add('B', {
    ...EXTRA.utf8Muller,
    sopInstanceUid: `${EXTRA_ROOT}.3.3`,
    studyInstanceUid: `${EXTRA_ROOT}.13`,
    seriesInstanceUid: `${EXTRA_ROOT}.23`,
    modality: 'US',
    specificCharacterSet: 'ISO_IR 192',
    studyDate: '20200101',
    studyTime: '000000',
  });
  // One study, two series (CT and MR, two SOP classes), with tags written by dcmodify.
  for (const [index, modality] of ['CT', 'MR'].entries()) {
    const fields = {
      patientId: EXTRA.extra.patientId,
      patientName: 'Extra^Tags',
      sopInstanceUid: `${EXTRA_ROOT}.3.${10 + index}`,
      studyInstanceUid: EXTRA.extra.studyInstanceUid,
      seriesInstanceUid: `${EXTRA_ROOT}.2.${index + 1}`,
      seriesNumber: String(index + 1),
      modality,
      studyDate: '20210315',
      studyTime: '103000',
      accessionNumber: 'CF-EXTRA-1',
      studyDescription: 'Extra tags',
      specificCharacterSet: 'ISO_IR 192',
    };
    const instance = await writeInstance(extras, fields);
    const modified = await runTool('dcmodify', [
      '-nb',
      '-i', `(0008,002a)=${EXTRA.extra.acquisitionDateTime}`,
      '-i', `(0008,0201)=${EXTRA.extra.timezone}`,
      '-i', `(0008,0090)=${EXTRA.extra.referringPhysician}`,
      '-i', '(0008,1032)[0].(0008,0100)=CODE1',
      '-i', '(0008,1032)[0].(0008,0102)=99TEST',
      '-i', '(0008,1032)[0].(0008,0104)=Test procedure',
      '-i', `(0008,0008)=${EXTRA.extra.imageType}`,
      '-i', `(0008,1090)=${EXTRA.extra.modelName}`,
      instance.path,
    ]);
    if (!modified.ok) throw new Error(`dcmodify failed: ${modified.stdout}${modified.stderr}`);
    placed.push({ ...instance, route: 'A' });
  }
  return placed;
}

/**
 * A reference Orthanc for a tenant: no plugin, the same configuration, and only the
 * instances whose labels satisfy the tenant's constraint (every tenant of TENANTS labels
 * instances, so its entitlement level is the instance).
 */
export async function startReference(
  tenant: TenantSpec,
  index: LabelIndex,
  instances: PlacedInstance[],
  configuration: Record<string, unknown> = {},
): Promise<RunningOrthanc> {
  const orthanc = await startOrthanc({
    configuration: {
      DicomAet: MAIN_AET,
      DicomAlwaysAllowFind: false,
      DicomModalities: { finder: { AET: CALLING_AET, Host: '127.0.0.1', Port: 104 } },
      ...configuration,
    },
    plugins: [],
  });
  const own = instances.filter((instance) => {
    const labels = index['SOPInstanceUID']!.get(instance.sopInstanceUid);
    if (labels === undefined) throw new Error(`The instance ${instance.sopInstanceUid} was not stored`);
    return satisfies(tenant, labels);
  });
  for (const instance of own) {
    const stored = await orthanc.rest('POST', '/instances', await readFile(instance.path));
    if (stored.status !== 200) throw new Error(`Cannot store ${instance.path} in the reference of ${tenant.aet}: ${stored.status}`);
  }
  return orthanc;
}

/** Stores the instances through their routes, one association per route. */
export async function storeScenario(deployment: Deployment, instances: PlacedInstance[]): Promise<void> {
  for (const route of ['A', 'B', 'main'] as const) {
    const files = instances.filter((instance) => instance.route === route).map((instance) => instance.path);
    const tenant = TENANTS.find((candidate) => candidate.key === route);
    const result = await storescu({
      port: tenant === undefined ? deployment.orthanc.dicomPort : deployment.ports[route]!,
      calledAet: tenant?.aet ?? MAIN_AET,
      callingAet: 'STORESCU',
      files,
    });
    if (!result.ok) throw new Error(`storescu through ${route} failed: ${result.stdout}${result.stderr}`);
  }
}

// ---------------------------------------------------------------------------------------
// C-FIND queries.

/** Tag and VR of the keywords the queries use. */
const DICTIONARY: Record<string, [tag: string, vr: string]> = {
  SpecificCharacterSet: ['0008,0005', 'CS'],
  SOPClassUID: ['0008,0016', 'UI'],
  SOPInstanceUID: ['0008,0018', 'UI'],
  StudyDate: ['0008,0020', 'DA'],
  SeriesDate: ['0008,0021', 'DA'],
  AcquisitionDateTime: ['0008,002a', 'DT'],
  StudyTime: ['0008,0030', 'TM'],
  AccessionNumber: ['0008,0050', 'SH'],
  QueryRetrieveLevel: ['0008,0052', 'CS'],
  RetrieveAETitle: ['0008,0054', 'AE'],
  InstanceAvailability: ['0008,0056', 'CS'],
  Modality: ['0008,0060', 'CS'],
  ModalitiesInStudy: ['0008,0061', 'CS'],
  SOPClassesInStudy: ['0008,0062', 'UI'],
  ReferringPhysicianName: ['0008,0090', 'PN'],
  TimezoneOffsetFromUTC: ['0008,0201', 'SH'],
  StudyDescription: ['0008,1030', 'LO'],
  ProcedureCodeSequence: ['0008,1032', 'SQ'],
  SeriesDescription: ['0008,103e', 'LO'],
  PatientName: ['0010,0010', 'PN'],
  PatientID: ['0010,0020', 'LO'],
  PatientBirthDate: ['0010,0030', 'DA'],
  PatientSex: ['0010,0040', 'CS'],
  StudyInstanceUID: ['0020,000d', 'UI'],
  SeriesInstanceUID: ['0020,000e', 'UI'],
  StudyID: ['0020,0010', 'SH'],
  SeriesNumber: ['0020,0011', 'IS'],
  InstanceNumber: ['0020,0013', 'IS'],
  NumberOfPatientRelatedStudies: ['0020,1200', 'IS'],
  NumberOfPatientRelatedSeries: ['0020,1202', 'IS'],
  NumberOfPatientRelatedInstances: ['0020,1204', 'IS'],
  NumberOfStudyRelatedSeries: ['0020,1206', 'IS'],
  NumberOfStudyRelatedInstances: ['0020,1208', 'IS'],
  NumberOfSeriesRelatedInstances: ['0020,1209', 'IS'],
};

/** The unique key of each level, as C-FIND names them. */
export const UNIQUE_KEY: Record<string, string> = {
  PATIENT: 'PatientID',
  STUDY: 'StudyInstanceUID',
  SERIES: 'SeriesInstanceUID',
  IMAGE: 'SOPInstanceUID',
};

/** The spellings of a level that Orthanc accepts (StringToResourceType, ASCII case-insensitive). */
const LEVEL_SPELLINGS: Record<string, string> = {
  PATIENT: 'PATIENT',
  PATIENTS: 'PATIENT',
  STUDY: 'STUDY',
  STUDIES: 'STUDY',
  SERIES: 'SERIES',
  IMAGE: 'IMAGE',
  IMAGES: 'IMAGE',
  INSTANCE: 'IMAGE',
  INSTANCES: 'IMAGE',
};

/** The unique key of the level a QueryRetrieveLevel value names, if Orthanc accepts it. */
export function uniqueKeyOf(level: string | null): string | undefined {
  const canonical = level === null ? undefined : LEVEL_SPELLINGS[level.replace(/[a-z]/g, (c) => c.toUpperCase())];
  return canonical === undefined ? undefined : UNIQUE_KEY[canonical];
}

export interface FindQuery {
  name: string;
  /** The QueryRetrieveLevel sent (null: the tag is left out). */
  level: string | null;
  model: 'study' | 'patient';
  /**
   * "Keyword" (return key), "Keyword=value" (matching key), or "(gggg,eeee) VR=value" for
   * a tag outside the dictionary above. Values are Unicode text, sent in `charset`.
   */
  keys: string[];
  /** The SpecificCharacterSet of the query ('' or undefined: none sent, i.e. the default repertoire). */
  charset?: string;
  /** The character set of the values' bytes, if not `charset` (e.g. Latin-1 bytes in a query that declares none). */
  encodeAs?: string;
  /** Expect no answer at all from Orthanc's own port (a non-match that the tenants must reproduce). */
  expectNone?: boolean;
  /** The final status expected from Orthanc's own port ("Success" by default). */
  expectStatus?: string;
  /**
   * A known mismatch of the plugin with the core: the differences found (compareWithCore,
   * prefixed with the tenant's AET) must be exactly `report`. Remove it once the plugin is fixed.
   */
  knownMismatch?: { bug: string; report: string[] };
}

interface ParsedKey {
  tag: string;
  vr: string;
  value: string | null;
}

function parseKey(key: string): ParsedKey {
  const [name, ...rest] = key.split('=');
  const value = rest.length === 0 ? null : rest.join('=');
  const raw = name!.match(/^\(([0-9a-fA-F]{4}),([0-9a-fA-F]{4})\)\s*([A-Z]{2})$/);
  if (raw) return { tag: `${raw[1]},${raw[2]}`.toLowerCase(), vr: raw[3]!, value };
  const known = DICTIONARY[name!];
  if (known === undefined) throw new Error(`Unknown keyword ${name} in the query key "${key}"`);
  return { tag: known[0], vr: known[1], value };
}

/** The DICOM JSON tag ("00100020") of a keyword. */
export function jsonTag(keyword: string): string {
  const known = DICTIONARY[keyword];
  if (known === undefined) throw new Error(`Unknown keyword ${keyword}`);
  return known[0].replace(',', '').toUpperCase();
}

/** The keys of a query as sent: the level's unique key is added as a return key if missing. */
export function keysOf(query: FindQuery): string[] {
  const keys = [...query.keys];
  const unique = uniqueKeyOf(query.level);
  if (unique !== undefined && !keys.some((key) => key.split('=')[0] === unique)) keys.push(unique);
  return keys;
}

/** The query file's bytes, in the dump format of dump2dcm. */
function queryDump(query: FindQuery): Buffer {
  const charset = query.charset ?? '';
  const elements: ParsedKey[] = [];
  if (charset !== '') elements.push({ tag: '0008,0005', vr: 'CS', value: charset });
  if (query.level !== null) elements.push({ tag: '0008,0052', vr: 'CS', value: query.level });
  for (const key of keysOf(query)) elements.push(parseKey(key));
  elements.sort((a, b) => a.tag.localeCompare(b.tag));
  const lines = elements.map(({ tag, vr, value }) => {
    if (vr === 'SQ') {
      // An empty sequence: a return key asking for the whole sequence.
      return Buffer.from(`(${tag}) SQ (Sequence with explicit length #=0)\n(fffe,e0dd) na (SequenceDelimitationItem for re-encod.)\n`, 'latin1');
    }
    const bytes = value === null ? Buffer.alloc(0) : encodeText(value, tag === '0008,0005' ? '' : (query.encodeAs ?? charset));
    return Buffer.concat([Buffer.from(`(${tag}) ${vr} [`, 'latin1'), bytes, Buffer.from(']\n', 'latin1')]);
  });
  return Buffer.concat(lines);
}

/** One attribute of an answer: its VR and its value as text (decoded from the answer's character set). */
export interface AnswerAttribute {
  vr: string;
  /** '' when empty; multiple values joined by "\\"; a sequence as its dump. */
  value: string;
}

/** An answer, keyed by tag as "ggggeeee" (upper-case hexadecimal). */
export type Answer = Record<string, AnswerAttribute>;

export interface FindOutcome {
  /** The status of the final C-FIND response as findscu names it, e.g. "Success", or how it failed. */
  status: string;
  answers: Answer[];
  tool: DcmtkResult;
}

/** What findscu reports as the outcome of the C-FIND. */
export function findStatus(result: DcmtkResult): string {
  const output = result.stdout + result.stderr;
  const final = output.match(/Received Final Find Response \(([^)]*)\)/);
  if (final) return final[1]!;
  // e.g. "Find Failed | 0006:0317 Peer aborted Association (or never connected)"
  const errors = [...output.matchAll(/^[EF]: (.*)$/gm)].map((match) => match[1]!.replace(/, file: .*$/, ''));
  return `no final response (${errors.length > 0 ? errors.join(' | ') : `exit code ${result.code}`})`;
}

let counter = 0;
const queryFiles = new WeakMap<FindQuery, Promise<string>>();

/** The query as a DICOM file (written once per query object). */
function queryFile(workDirectory: string, query: FindQuery): Promise<string> {
  let file = queryFiles.get(query);
  if (file === undefined) {
    file = (async () => {
      const base = join(workDirectory, `query-${++counter}`);
      await writeFile(`${base}.dump`, queryDump(query));
      const built = await runTool('dump2dcm', [`${base}.dump`, `${base}.dcm`]);
      if (!built.ok) throw new Error(`dump2dcm failed for the query "${query.name}": ${built.stdout}${built.stderr}`);
      return `${base}.dcm`;
    })();
    queryFiles.set(query, file);
  }
  return file;
}

/** Sends a C-FIND built from the query and returns the answers. */
export async function cfind(
  workDirectory: string,
  target: { host?: string; port: number; calledAet: string; callingAet?: string; dimseTimeoutSeconds?: number },
  query: FindQuery,
): Promise<FindOutcome> {
  await mkdir(workDirectory, { recursive: true });
  const queryPath = await queryFile(workDirectory, query);
  const directory = join(workDirectory, `find-${++counter}`);
  await mkdir(directory, { recursive: true });
  try {
    const tool = await runTool('findscu', [
      '-v',
      ...(target.dimseTimeoutSeconds === undefined ? [] : ['-td', String(target.dimseTimeoutSeconds)]),
      '-aet', target.callingAet ?? CALLING_AET,
      '-aec', target.calledAet,
      query.model === 'patient' ? '-P' : '-S',
      '-X',
      '-od', directory,
      target.host ?? '127.0.0.1',
      String(target.port),
      queryPath,
    ]);
    const files = (await readdir(directory)).filter((name) => name.startsWith('rsp')).sort();
    const answers = await readAnswers(files.map((file) => join(directory, file)));
    return { status: findStatus(tool), answers, tool };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** The TextDecoder label of a SpecificCharacterSet (single-valued, no code extensions). */
function decoderLabel(specificCharacterSet: string): string {
  const labels: Record<string, string> = {
    '': 'latin1',
    'ISO_IR 6': 'latin1',
    'ISO_IR 100': 'latin1',
    'ISO_IR 101': 'iso-8859-2',
    'ISO_IR 144': 'iso-8859-5',
    'ISO_IR 126': 'iso-8859-7',
    'ISO_IR 192': 'utf-8',
  };
  const label = labels[specificCharacterSet];
  if (label === undefined) throw new Error(`No decoder for the SpecificCharacterSet "${specificCharacterSet}" of an answer`);
  return label;
}

const TEXT_VRS = new Set(['PN', 'LO', 'SH', 'LT', 'ST', 'UT', 'UC']);
const DUMP_LINE = /^\(([0-9a-f]{4}),([0-9a-f]{4})\) (\w\w) (.*?)\s*#\s*\d+, ?\d+ .+$/;

/**
 * Reads findscu's answer files with one dcmdump (raw bytes, full values, UID numbers), then
 * decodes the text of each answer from its own SpecificCharacterSet.
 */
async function readAnswers(files: string[]): Promise<Answer[]> {
  if (files.length === 0) return [];
  const output = await new Promise<Buffer>((resolve, reject) => {
    execFile('dcmdump', ['-q', '+L', '+F', '-Un', ...files], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`dcmdump failed: ${error.message} ${stderr.toString()}`));
      else resolve(stdout);
    });
  });
  const raw: { tag: string; vr: string; value: string }[][] = [];
  let current: { tag: string; vr: string; value: string }[] | undefined;
  let inDataSet = false;
  for (const line of output.toString('latin1').split('\n')) {
    if (line.startsWith('# dcmdump (')) {
      current = [];
      raw.push(current);
      inDataSet = false;
    } else if (line.startsWith('# Dicom-Data-Set')) {
      inDataSet = true;
    } else if (inDataSet && current !== undefined && line.startsWith(' ')) {
      // A line inside a sequence: part of the sequence's value.
      const last = current[current.length - 1];
      if (last !== undefined && last.vr === 'SQ') last.value += `${line.trim().replace(/\s*#.*$/, '')}\n`;
    } else if (inDataSet && current !== undefined) {
      const match = line.match(DUMP_LINE);
      if (match === null || match[1] === 'fffe') continue;
      const [, group, element, vr, rest] = match;
      let value = rest!;
      if (vr === 'SQ') value = '';
      else if (value === '(no value available)') value = '';
      else if (value.startsWith('[') && value.endsWith(']')) value = value.slice(1, -1);
      current.push({ tag: `${group}${element}`.toUpperCase(), vr: vr!, value });
    }
  }
  return raw.map((attributes) => {
    const charset = attributes.find((attribute) => attribute.tag === '00080005')?.value ?? '';
    const decoder = new TextDecoder(decoderLabel(charset));
    const answer: Answer = {};
    for (const { tag, vr, value } of attributes) {
      const text = TEXT_VRS.has(vr) || vr === 'SQ' ? decoder.decode(Buffer.from(value, 'latin1')) : value;
      answer[tag] = { vr, value: text };
    }
    return answer;
  });
}

/** One attribute of an answer as comparable text. */
export function attributeText(attribute: AnswerAttribute | undefined): string {
  return attribute === undefined ? '(absent)' : `${attribute.vr} [${attribute.value}]`;
}

/** Every attribute of an answer as text, keyed by tag, in tag order. */
export function answerTexts(answer: Answer): Record<string, string> {
  return Object.fromEntries(Object.keys(answer).sort().map((tag) => [tag, attributeText(answer[tag])]));
}

/** The value of an attribute ('' if empty or absent). */
export function valueOf(answer: Answer, keyword: string): string {
  return answer[jsonTag(keyword)]?.value ?? '';
}

// ---------------------------------------------------------------------------------------
// Which resources belong to a tenant.

interface ExpandedResource {
  Labels?: string[];
  MainDicomTags?: Record<string, string>;
}

const RESOURCE_URI: Record<string, string> = {
  PatientID: '/patients?expand',
  StudyInstanceUID: '/studies?expand',
  SeriesInstanceUID: '/series?expand',
  SOPInstanceUID: '/instances?expand',
};

export type LabelIndex = Record<string, Map<string, string[]>>;

/** The labels of every resource, keyed by the DICOM unique key of its level. */
export async function labelIndex(orthanc: RunningOrthanc): Promise<LabelIndex> {
  const index: LabelIndex = {};
  for (const [keyword, uri] of Object.entries(RESOURCE_URI)) {
    const response = await orthanc.rest<ExpandedResource[]>('GET', uri);
    if (response.status !== 200) throw new Error(`GET ${uri}: ${response.status}`);
    index[keyword] = new Map(response.body.map((resource) => [resource.MainDicomTags?.[keyword] ?? '', resource.Labels ?? []]));
  }
  return index;
}

export function satisfies(tenant: TenantSpec, labels: string[]): boolean {
  switch (tenant.constraint) {
    case 'All':
      return tenant.labels.every((label) => labels.includes(label));
    case 'Any':
      return tenant.labels.some((label) => labels.includes(label));
    case 'None':
      return !tenant.labels.some((label) => labels.includes(label));
  }
}

/** Whether the resource that an answer describes belongs to the tenant, at the query level. */
export function belongsTo(index: LabelIndex, tenant: TenantSpec, level: string, answer: Answer): boolean {
  const keyword = uniqueKeyOf(level)!;
  const labels = index[keyword]!.get(valueOf(answer, keyword));
  if (labels === undefined) throw new Error(`No resource has the ${keyword} ${valueOf(answer, keyword)}`);
  return satisfies(tenant, labels);
}

// ---------------------------------------------------------------------------------------
// The comparison.

/**
 * The differences between a tenant's answers and those of a core (the tenant's reference
 * Orthanc, see startReference) restricted to the resources whose labels satisfy the
 * tenant's constraint at the query level, as readable lines (none: the tenant answers as
 * the core does). RetrieveAETitle must be the tenant's AET where the core puts its own.
 */
export function compareWithCore(
  index: LabelIndex,
  tenant: TenantSpec,
  query: FindQuery,
  core: FindOutcome,
  tenantOutcome: FindOutcome,
): string[] {
  const differences: string[] = [];
  if (tenantOutcome.status !== core.status) {
    differences.push(`status: core "${core.status}", tenant "${tenantOutcome.status}"`);
  }
  const level = query.level ?? '';
  const keyword = uniqueKeyOf(query.level);
  if (keyword === undefined) {
    if (tenantOutcome.answers.length !== core.answers.length) {
      differences.push(`answers: core ${core.answers.length}, tenant ${tenantOutcome.answers.length}`);
    }
    return differences;
  }
  const expected = new Map<string, Answer>();
  for (const answer of core.answers) {
    if (belongsTo(index, tenant, level, answer)) expected.set(valueOf(answer, keyword), answer);
  }
  const got = new Map<string, Answer>();
  for (const answer of tenantOutcome.answers) {
    const key = valueOf(answer, keyword);
    if (got.has(key)) differences.push(`${keyword} ${key} answered twice`);
    got.set(key, answer);
  }
  const missing = [...expected.keys()].filter((key) => !got.has(key)).sort();
  const extra = [...got.keys()].filter((key) => !expected.has(key)).sort();
  if (missing.length > 0) differences.push(`missing ${keyword}: ${missing.join(', ')}`);
  if (extra.length > 0) differences.push(`extra ${keyword}: ${extra.join(', ')}`);

  for (const [key, answer] of got) {
    const reference = expected.get(key);
    if (reference === undefined) continue;
    const want = answerTexts(reference);
    const have = answerTexts(answer);
    const retrieve = jsonTag('RetrieveAETitle');
    if (want[retrieve] === `AE [${MAIN_AET}]`) want[retrieve] = `AE [${tenant.aet}]`;
    for (const tag of new Set([...Object.keys(want), ...Object.keys(have)])) {
      if (want[tag] !== have[tag]) {
        differences.push(`${keyword} ${key}, (${tag.slice(0, 4)},${tag.slice(4)}): core ${want[tag] ?? '(absent)'}, tenant ${have[tag] ?? '(absent)'}`);
      }
    }
  }
  return differences;
}
