// The isolation guarantee, as a collision matrix. Two tenants A and B share, in turn, a
// PatientID (different studies), a StudyInstanceUID (different series), a
// SeriesInstanceUID (different instances), a SOPInstanceUID with different content (the
// same Orthanc ID: B sends after A), and, beyond the brief, a StudyInstanceUID or a
// SOPInstanceUID under different PatientIDs (same UIDs, different Orthanc resources).
// Orthanc's own port adds a third part ("M") to each collision.
//
// Whatever reached Orthanc through one side must never show through the other: every
// C-FIND answer (PATIENT, STUDY, SERIES, IMAGE: the resources, every attribute value and
// every computed count) is what the tenant's entitled instances give, and nothing else;
// a query that matches only the other side's values finds nothing, one by the tenant's
// own values finds its resource (or is a known limit, a miss); C-MOVE and C-GET at
// every level send exactly the tenant's entitled instances, each once; a C-STORE of an
// instance Orthanc holds and that is not the tenant's is refused (0x0124) and changes
// nothing ("ForeignInstances": "Reject", the default), or labels the existing instance
// without overwriting it ("Share"), with OverwriteInstances false and true.
//
// The expectation comes from the store history, not from the plugin's label rule: which
// instances were accepted through which tenant (or shared through a tenant with
// "ForeignInstances": "Share"), and which came through Orthanc's own port ("M"); each
// tenant's declared meaning is written as plain facts about that history (DECLARED, per
// group): e.g. "ALL_A sees what was stored through ALL_A", "NEITHER sees only the
// main port's". A resource (patient, study, series, instance) shows at its query level when
// the facts say so of the stores into it, and holds an instance the tenant sees; the values
// and counts are those of the instances the tenant sees. Apart from that, the labels Orthanc
// holds are checked against the same history: every resource has exactly the labels of the
// tenants that stored into it, at their LabelsStoreLevels.
//
// Groups of tenants (each group has its own labels, and its own copy of every collision):
// - All:   ALL_A All [all_a, all_s], ALL_B All [all_b, all_s] (a label in common: All must
//          need every label), LabelsStoreLevels the four levels (so PATIENT level shows);
// - Any:   ANY_A Any [any_a, any_x], ANY_B Any [any_b, any_y], the four levels;
// - None:  SEND_A All [none_a] and SEND_B All [none_b] store (default LabelsStoreLevels:
//          patients are not labelled); NOT_B None [none_b] sees what B did not label
//          (A's side and the main port's), NOT_A None [none_a] sees B's side and the main
//          port's, NEITHER None [none_a, none_b] sees the main port's only. SEND_A and
//          SEND_B are checked too: All with the default LabelsStoreLevels;
// - Share: SHARE_A All [share_a], SHARE_B All [share_b] with "ForeignInstances": "Share",
//          for the SOPInstanceUID collision only.
//
// Two Orthancs: OverwriteInstances false (every collision) and true (the collisions that
// send an instance Orthanc already holds). Every DICOM operation runs in the beforeAll,
// in parallel (about two thousand DCMTK calls); the tests read their outcomes, one test per
// case x group x operation, each listing every finding ("LEAK ..." when a value, a count,
// a resource or an instance of a part not entitled to the tenant shows through it; other
// lines are mismatches, e.g. misses). A cell with known findings (KNOWN, KNOWN_CELLS) is a
// "KNOWN LEAK" or "KNOWN LIMIT" test: it checks that every finding is of the known kinds,
// and fails once the plugin changes. Beyond the matrix: the stores of a None tenant (any
// instance Orthanc holds is foreign to it: refused with "Reject", labelled and never
// overwritten with "Share"), another sender's instance deleted from a shared
// patient (B's values only, and its own, afterwards), and the startup warning of a tenant whose LabelsStoreLevels
// lacks Instance. ISOLATION_REPORT=<file> writes every finding (run through
// scripts/debian13.sh, pass it with `env`: its sandbox keeps only MTD_* and VITEST_*).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIXED_LABEL } from '../../src/mixing.js';
import { orthancIds, SOP_CLASS, writeInstance, type SyntheticInstance } from '../support/dataset.js';
import { dicomStrings, findscu, runTool, type DcmtkResult, type DicomJson } from '../support/dcmtk.js';
import { canConnect, freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { multitenantSection, PLUGIN_PATH, tenantName } from '../support/plugin.js';

// ---------------------------------------------------------------------------------------
// Ports: distinct, outside the ephemeral range (see freePort).

const uniquePort = freePort;

// ---------------------------------------------------------------------------------------
// Tenants and groups.

const LEVELS = ['Patient', 'Study', 'Series', 'Instance'] as const;
type Level = (typeof LEVELS)[number];
type Constraint = 'All' | 'Any' | 'None';
const FOUR_LEVELS: Level[] = [...LEVELS];
const DEFAULT_LEVELS: Level[] = ['Study', 'Series', 'Instance'];

interface Tenant {
  aet: string;
  labels: string[];
  constraint: Constraint;
  /** undefined: no "LabelsStoreLevels" key (Study, Series, Instance). */
  configuredLevels?: Level[];
  foreignInstances?: 'Reject' | 'Share';
}

const levelsOf = (tenant: Tenant): Level[] => tenant.configuredLevels ?? DEFAULT_LEVELS;
const describeTenant = (tenant: Tenant) =>
  `${tenant.aet} (${tenant.constraint} [${tenant.labels.join(', ')}]${tenant.configuredLevels ? '' : ', default LabelsStoreLevels'}` +
  `${tenant.foreignInstances === 'Share' ? ', Share' : ''})`;

const tenant = (aet: string, constraint: Constraint, labels: string[], configuredLevels?: Level[], foreignInstances?: 'Share'): Tenant => ({
  aet,
  constraint,
  labels,
  ...(configuredLevels ? { configuredLevels } : {}),
  ...(foreignInstances ? { foreignInstances } : {}),
});

const ALL_A = tenant('ALL_A', 'All', ['all_a', 'all_s'], FOUR_LEVELS);
const ALL_B = tenant('ALL_B', 'All', ['all_b', 'all_s'], FOUR_LEVELS);
const ANY_A = tenant('ANY_A', 'Any', ['any_a', 'any_x'], FOUR_LEVELS);
const ANY_B = tenant('ANY_B', 'Any', ['any_b', 'any_y'], FOUR_LEVELS);
const SEND_A = tenant('SEND_A', 'All', ['none_a']);
const SEND_B = tenant('SEND_B', 'All', ['none_b']);
const NOT_B = tenant('NOT_B', 'None', ['none_b']);
const NOT_A = tenant('NOT_A', 'None', ['none_a']);
const NEITHER = tenant('NEITHER', 'None', ['none_a', 'none_b']);
const SHARE_A = tenant('SHARE_A', 'All', ['share_a'], FOUR_LEVELS);
const SHARE_B = tenant('SHARE_B', 'All', ['share_b'], FOUR_LEVELS, 'Share');
/** Only for the stores of a None tenant with "Share" (beyond the matrix). */
const NOT_B_SHARE = tenant('NOT_B_SHARE', 'None', ['none_b'], undefined, 'Share');
/** Only for the startup warning: its isolation is only as fine as the series. */
const COARSE = tenant('COARSE', 'All', ['coarse'], ['Study', 'Series']);

const TENANTS = [ALL_A, ALL_B, ANY_A, ANY_B, SEND_A, SEND_B, NOT_B, NOT_A, NEITHER, SHARE_A, SHARE_B, COARSE, NOT_B_SHARE];

type CaseKey = 'patient' | 'study' | 'series' | 'sop' | 'study-uid' | 'sop-uid';

interface Group {
  key: string;
  /** The row of the result table. */
  constraint: string;
  /** Who stores side A and side B. */
  a: Tenant;
  b: Tenant;
  /** Through whom everything is checked. */
  viewers: Tenant[];
  /** Who sends the other content of A's instance (SOPInstanceUID collision), after A. */
  intruders: Tenant[];
  cases?: CaseKey[];
}

const GROUPS: Group[] = [
  { key: 'all', constraint: 'All', a: ALL_A, b: ALL_B, viewers: [ALL_A, ALL_B], intruders: [ALL_B] },
  { key: 'any', constraint: 'Any', a: ANY_A, b: ANY_B, viewers: [ANY_A, ANY_B], intruders: [ANY_B] },
  {
    key: 'none',
    constraint: 'None (+ All, default levels)',
    a: SEND_A,
    b: SEND_B,
    viewers: [NOT_B, NOT_A, NEITHER, SEND_A, SEND_B],
    intruders: [SEND_B, NOT_A, NEITHER],
  },
  { key: 'share', constraint: 'All, Share', a: SHARE_A, b: SHARE_B, viewers: [SHARE_A, SHARE_B], intruders: [SHARE_B], cases: ['sop'] },
];

// ---------------------------------------------------------------------------------------
// What each tenant of the matrix is declared to see, as facts about the store history.

/** Who stored into a resource: the AET of a tenant, or MAIN for Orthanc's own port. */
type Sender = string;
const MAIN: Sender = 'M';

interface Declared {
  fact: string;
  /**
   * Whether a resource at this level (Patient, Study, Series, Instance) shows through the
   * tenant, given who stored into it (an instance shows at IMAGE level, and is sent by a
   * retrieve, when this is true at Instance level).
   */
  sees: (level: Level, senders: ReadonlySet<Sender>) => boolean;
}

const storedThrough = (senders: ReadonlySet<Sender>, ...tenants: Tenant[]) => tenants.some((t) => senders.has(t.aet));

const DECLARED = new Map<Tenant, Declared>([
  // All: each tenant its own label, and one label in common (all_s) that no tenant holds alone.
  [ALL_A, { fact: 'ALL_A sees, at every level, what was stored through ALL_A (not ALL_B\'s, although both label all_s)', sees: (_, s) => storedThrough(s, ALL_A) }],
  [ALL_B, { fact: 'ALL_B sees, at every level, what was stored through ALL_B (not ALL_A\'s, although both label all_s)', sees: (_, s) => storedThrough(s, ALL_B) }],
  // Any: no label in common.
  [ANY_A, { fact: 'ANY_A sees, at every level, what was stored through ANY_A', sees: (_, s) => storedThrough(s, ANY_A) }],
  [ANY_B, { fact: 'ANY_B sees, at every level, what was stored through ANY_B', sees: (_, s) => storedThrough(s, ANY_B) }],
  // None group: nobody labels patients (default LabelsStoreLevels), so no patient shows
  // through SEND_A and SEND_B, and every patient (that holds what it sees) through the None tenants.
  [
    SEND_A,
    {
      fact: 'SEND_A sees, at STUDY, SERIES and IMAGE level, what was stored through SEND_A or another tenant whose labels include none_a (NOT_A, NEITHER); no patient',
      sees: (level, s) => level !== 'Patient' && storedThrough(s, SEND_A, NOT_A, NEITHER),
    },
  ],
  [
    SEND_B,
    {
      fact: 'SEND_B sees, at STUDY, SERIES and IMAGE level, what was stored through SEND_B or another tenant whose labels include none_b (NOT_B, NEITHER); no patient',
      sees: (level, s) => level !== 'Patient' && storedThrough(s, SEND_B, NOT_B, NEITHER),
    },
  ],
  [
    NOT_B,
    {
      fact: 'NOT_B (None [none_b]) sees everything except what was stored through SEND_B or another tenant whose labels include none_b (NOT_B, NEITHER); every patient',
      sees: (level, s) => level === 'Patient' || !storedThrough(s, SEND_B, NOT_B, NEITHER),
    },
  ],
  [
    NOT_A,
    {
      fact: 'NOT_A (None [none_a]) sees everything except what was stored through SEND_A or another tenant whose labels include none_a (NOT_A, NEITHER); every patient',
      sees: (level, s) => level === 'Patient' || !storedThrough(s, SEND_A, NOT_A, NEITHER),
    },
  ],
  [
    NEITHER,
    {
      fact: 'NEITHER (None [none_a, none_b]) sees only the main port\'s: what no tenant stored into; every patient',
      sees: (level, s) => level === 'Patient' || [...s].every((sender) => sender === MAIN),
    },
  ],
  // Share: what SHARE_B shares (labels for itself) is SHARE_B's too.
  [SHARE_A, { fact: 'SHARE_A sees, at every level, what was stored through SHARE_A', sees: (_, s) => storedThrough(s, SHARE_A) }],
  [SHARE_B, { fact: 'SHARE_B sees, at every level, what was stored or shared through SHARE_B', sees: (_, s) => storedThrough(s, SHARE_B) }],
]);

function declared(tenant: Tenant): Declared {
  const found = DECLARED.get(tenant);
  if (found === undefined) throw new Error(`${tenant.aet}: no declared meaning (DECLARED)`);
  return found;
}

// ---------------------------------------------------------------------------------------
// The collisions.

interface CaseSpec {
  key: CaseKey;
  title: string;
  /** Which identifiers the parts A, B and M share. */
  shares: { patient: boolean; study: boolean; series: boolean; sop: boolean };
  /** Run with OverwriteInstances true too (an instance Orthanc holds is sent again). */
  overwriteMatters: boolean;
}

const CASES: CaseSpec[] = [
  { key: 'patient', title: '1. same PatientID, different studies', shares: { patient: true, study: false, series: false, sop: false }, overwriteMatters: false },
  { key: 'study', title: '2. same StudyInstanceUID, different series', shares: { patient: true, study: true, series: false, sop: false }, overwriteMatters: false },
  { key: 'series', title: '3. same SeriesInstanceUID, different instances', shares: { patient: true, study: true, series: true, sop: false }, overwriteMatters: false },
  { key: 'sop', title: '4. same SOPInstanceUID (same Orthanc ID), different content', shares: { patient: true, study: true, series: true, sop: true }, overwriteMatters: true },
  { key: 'study-uid', title: '5. same StudyInstanceUID under different PatientIDs', shares: { patient: false, study: true, series: false, sop: false }, overwriteMatters: false },
  { key: 'sop-uid', title: '6. same SOPInstanceUID under different PatientIDs', shares: { patient: false, study: false, series: false, sop: true }, overwriteMatters: false },
];

type Part = 'A' | 'B' | 'M';
const PARTS: Part[] = ['A', 'B', 'M'];

/** What each side's instances say: every value tells the side it came from. */
const PART_VALUES: Record<Part, { name: string; charset: string; description: string; date: string; series: { modality: keyof typeof SOP_CLASS; count: number }[] }> = {
  A: { name: 'Alpha^Jürgen', charset: 'ISO_IR 100', description: 'ALPHA side', date: '20200101', series: [{ modality: 'CT', count: 2 }, { modality: 'MR', count: 1 }] },
  B: { name: 'Bravo^Δέλτα', charset: 'ISO_IR 126', description: 'BRAVO side', date: '20210202', series: [{ modality: 'US', count: 2 }] },
  M: { name: 'Mike^Иван', charset: 'ISO_IR 144', description: 'MIKE side', date: '20220303', series: [{ modality: 'NM', count: 1 }] },
};
const NAME_PREFIX: Record<Part, string> = { A: 'Alpha', B: 'Bravo', M: 'Mike' };

interface Placed extends SyntheticInstance {
  part: Part;
  ids: ReturnType<typeof orthancIds>;
}

/** The data of one group and case: what each part sends, and B's other content of A's instance. */
interface Collision {
  group: Group;
  spec: CaseSpec;
  /** Instances sent by A, B (through the group's tenants) and M (through the main port). */
  sent: Record<Part, Placed[]>;
  /** SOPInstanceUID collision: B's content for A's first instance (same Orthanc ID). */
  foreignCopy?: Placed;
}

const ROOT = '1.2.826.0.1.3680043.10.1234.4242';

async function writeCollision(directory: string, group: Group, groupIndex: number, spec: CaseSpec, caseIndex: number): Promise<Collision> {
  const root = `${ROOT}.${groupIndex + 1}.${caseIndex + 1}`;
  const tag = `I${groupIndex + 1}${caseIndex + 1}`;
  const sent: Record<Part, Placed[]> = { A: [], B: [], M: [] };
  let foreignCopy: Placed | undefined;
  const { shares } = spec;
  for (const [k, part] of PARTS.entries()) {
    const values = PART_VALUES[part];
    for (const [j, series] of values.series.entries()) {
      for (let i = 0; i < series.count; i++) {
        // The SOPInstanceUID collision: A's first instance and B's first instance (the main
        // port would overwrite with OverwriteInstances, so it keeps its own UIDs there).
        const first = j === 0 && i === 0;
        const sharedSop = shares.sop && first && (part !== 'M' || !shares.patient);
        const fields = {
          patientId: shares.patient ? `${tag}-P` : `${tag}-P${part}`,
          patientName: values.name,
          specificCharacterSet: values.charset,
          studyInstanceUid: shares.study ? `${root}.1` : `${root}.1.${k + 1}`,
          seriesInstanceUid: shares.series ? `${root}.2` : `${root}.2.${k + 1}.${j + 1}`,
          sopInstanceUid: sharedSop ? `${root}.3` : `${root}.3.${k + 1}.${j + 1}.${i + 1}`,
          sopClassUid: SOP_CLASS[series.modality],
          modality: series.modality,
          studyDate: values.date,
          studyTime: '101010',
          accessionNumber: `${tag}-${part}`,
          studyDescription: values.description,
          seriesNumber: String(10 * (k + 1) + j + 1),
          instanceNumber: String(10 * (k + 1) + i + 1),
        };
        const written = await writeInstance(join(directory, group.key, spec.key, part), fields);
        const placed: Placed = { ...written, part, ids: orthancIds(written) };
        if (sharedSop && part === 'B' && shares.patient) foreignCopy = placed;
        else sent[part].push(placed);
      }
    }
  }
  return { group, spec, sent, ...(foreignCopy ? { foreignCopy } : {}) };
}

// ---------------------------------------------------------------------------------------
// A pool: every DICOM operation of the file runs through it, a few at a time.

const CONCURRENCY = 6;
let running = 0;
const waiting: (() => void)[] = [];

async function pooled<T>(work: () => Promise<T>): Promise<T> {
  if (running >= CONCURRENCY) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await work();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

// ---------------------------------------------------------------------------------------
// C-MOVE destinations: storescp processes, one move at a time each.

const SCU_AET = 'ISOSCU';

interface Destination {
  aet: string;
  port: number;
  directory: string;
  process?: ChildProcess;
  log: string;
  busy: boolean;
}

const destinations: Destination[] = [];
const destinationWaiters: (() => void)[] = [];

async function withDestination<T>(work: (destination: Destination) => Promise<T>): Promise<T> {
  let destination = destinations.find((candidate) => !candidate.busy);
  while (destination === undefined) {
    await new Promise<void>((resolve) => destinationWaiters.push(resolve));
    destination = destinations.find((candidate) => !candidate.busy);
  }
  destination.busy = true;
  try {
    return await work(destination);
  } finally {
    destination.busy = false;
    destinationWaiters.shift()?.();
  }
}

async function startDestination(directory: string, index: number): Promise<Destination> {
  const destination: Destination = { aet: `ISODEST${index}`, port: await uniquePort(), directory: join(directory, `dest${index}`), log: '', busy: false };
  await mkdir(destination.directory, { recursive: true });
  const child = spawn('storescp', ['-v', '-aet', destination.aet, '-od', destination.directory, String(destination.port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The log lines only (stderr): storescp writes its progress dots to stdout, between them.
  child.stdout!.resume();
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => (destination.log += chunk));
  destination.process = child;
  // Listening, even on a loaded host (a move to a destination that is not would fail). A
  // connection tells: binding the port to see whether it is free could make storescp fail.
  for (let attempt = 0; attempt < 500 && !(await canConnect(destination.port)); attempt++) await sleep(20);
  if (!(await canConnect(destination.port))) throw new Error(`storescp ${destination.aet} does not listen on port ${destination.port}: ${destination.log}`);
  return destination;
}


// ---------------------------------------------------------------------------------------
// An Orthanc of the matrix.

interface Deployment {
  overwrite: boolean;
  orthanc: RunningOrthanc;
  ports: Map<Tenant, number>;
  collisions: Collision[];
  /** The store history: who stored into each resource (by Orthanc ID, at every level). */
  senders: Map<string, Set<Sender>>;
  /** The instances Orthanc holds, with the content it holds, by Orthanc ID. */
  stored: Map<string, Placed>;
  /** Findings of the stores, by collision ("group/case"). */
  storeReports: Map<string, string[]>;
  /** Findings of the C-FIND, C-MOVE and C-GET checks, by "group/case/operation". */
  reports: Map<string, string[]>;
}

async function startDeployment(overwrite: boolean, destinationList: Destination[]): Promise<Deployment> {
  const ports = new Map<Tenant, number>();
  for (const t of TENANTS) ports.set(t, await uniquePort());
  const servers = TENANTS.map((t) => ({
    AET: t.aet,
    Port: ports.get(t)!,
    Labels: t.labels,
    LabelsConstraint: t.constraint,
    ...(t.configuredLevels ? { LabelsStoreLevels: t.configuredLevels } : {}),
    ...(t.foreignInstances ? { ForeignInstances: t.foreignInstances } : {}),
  }));
  const modalities: Record<string, unknown> = { isoscu: { AET: SCU_AET, Host: '127.0.0.1', Port: 104 } };
  for (const destination of destinationList) {
    modalities[destination.aet.toLowerCase()] = { AET: destination.aet, Host: '127.0.0.1', Port: destination.port };
  }
  const orthanc = await startOrthanc({
    configuration: {
      HttpPort: await uniquePort(),
      DicomPort: await uniquePort(),
      OverwriteInstances: overwrite,
      // Answers in UTF-8: the names are Latin, Greek and Cyrillic (Latin-1, the default, drops the last two).
      DefaultEncoding: 'Utf8',
      DicomModalities: modalities,
      ...multitenantSection(...(servers as never[])),
    },
    plugins: [PLUGIN_PATH],
    waitForPorts: [...ports.values()],
  });
  return { overwrite, orthanc, ports, collisions: [], senders: new Map(), stored: new Map(), storeReports: new Map(), reports: new Map() };
}

// ---------------------------------------------------------------------------------------
// Stores, and the label model.

function describeResult(result: DcmtkResult): string {
  return `exit code ${result.code}: ${(result.stdout + result.stderr).trim().replace(/\n/g, ' | ')}`;
}

async function storeThrough(deployment: Deployment, through: Tenant | undefined, files: string[]): Promise<DcmtkResult> {
  const [aet, port] = through === undefined ? ['ORTHANC', deployment.orthanc.dicomPort] : [through.aet, deployment.ports.get(through)!];
  return pooled(() => runTool('storescu', ['-v', '-aet', SCU_AET, '-aec', aet, '127.0.0.1', String(port), ...files], 60_000));
}

const RESOURCE_LEVELS: [Level, keyof Placed['ids'], string][] = [
  ['Patient', 'patient', 'patients'],
  ['Study', 'study', 'studies'],
  ['Series', 'series', 'series'],
  ['Instance', 'instance', 'instances'],
];

/** The store history: an accepted store (or share) of the instance through this tenant, or through the main port. */
function recordStore(deployment: Deployment, through: Tenant | undefined, instance: Placed) {
  for (const [, key] of RESOURCE_LEVELS) {
    const senders = deployment.senders.get(instance.ids[key]) ?? new Set<Sender>();
    deployment.senders.set(instance.ids[key], senders);
    senders.add(through?.aet ?? MAIN);
  }
}

const sendersOf = (deployment: Deployment, id: string): ReadonlySet<Sender> => deployment.senders.get(id) ?? new Set();

/** Whether the resource of this level shows through the tenant, by its declared meaning. */
const shows = (deployment: Deployment, viewer: Tenant, level: Level, id: string) => declared(viewer).sees(level, sendersOf(deployment, id));

/** Whether the instance is the tenant's: it shows through it and a retrieve through it sends it. */
const isEntitled = (deployment: Deployment, viewer: Tenant, instance: Placed) => shows(deployment, viewer, 'Instance', instance.ids.instance);

const TENANT_BY_AET = new Map(TENANTS.map((t) => [t.aet, t]));

/** The labels a resource of this level should have: those of every tenant that stored into it with this level among its LabelsStoreLevels. */
function expectedLabels(deployment: Deployment, level: Level, id: string): string[] {
  const labels = new Set<string>();
  for (const sender of sendersOf(deployment, id)) {
    const through = TENANT_BY_AET.get(sender);
    if (through !== undefined && levelsOf(through).includes(level)) for (const label of through.labels) labels.add(label);
  }
  return [...labels].sort();
}

const STATUS_REFUSED = /Received Store Response \(Unknown Status: 0x124\)/;
const STATUS_SUCCESS = /Received Store Response \(Success\)/;

interface InstanceState {
  md5: string;
  studyDescription: string;
  labels: Record<string, string[]>;
}

async function stateOf(orthanc: RunningOrthanc, instance: Placed): Promise<InstanceState> {
  const md5 = await orthanc.rest<string>('GET', `/instances/${instance.ids.instance}/attachments/dicom/md5`);
  const tags = await orthanc.rest<Record<string, string>>('GET', `/instances/${instance.ids.instance}/simplified-tags`);
  const labels: Record<string, string[]> = {};
  for (const [level, key, uri] of RESOURCE_LEVELS) {
    const response = await orthanc.rest<string[]>('GET', `/${uri}/${instance.ids[key]}/labels`);
    labels[level] = response.status === 200 ? [...response.body].sort() : [`HTTP ${response.status}`];
  }
  return { md5: String(md5.body), studyDescription: tags.body['StudyDescription'] ?? '', labels };
}

/**
 * A, then B, then the main port; in the SOPInstanceUID collision, B's other content of
 * A's instance is sent after A's (by B, and by the group's other intruders), then Orthanc's
 * copy is compared with what it was.
 */
async function storeCollision(deployment: Deployment, collision: Collision): Promise<void> {
  const { group, sent, foreignCopy } = collision;
  const report: string[] = [];
  deployment.storeReports.set(`${group.key}/${collision.spec.key}`, report);
  const send = async (through: Tenant | undefined, instances: Placed[]) => {
    if (instances.length === 0) return;
    const result = await storeThrough(deployment, through, instances.map((instance) => instance.path));
    if (!result.ok) report.push(`store through ${through?.aet ?? 'the main port'} failed: ${describeResult(result)}`);
    for (const instance of instances) {
      recordStore(deployment, through, instance);
      deployment.stored.set(instance.ids.instance, instance);
    }
  };
  await send(group.a, sent.A);
  await send(group.b, sent.B);
  if (foreignCopy !== undefined) {
    const original = sent.A.find((instance) => instance.ids.instance === foreignCopy.ids.instance)!;
    const before = await stateOf(deployment.orthanc, original);
    for (const intruder of group.intruders) {
      const entitled = isEntitled(deployment, intruder, original);
      if (entitled) throw new Error(`${intruder.aet} is entitled to A's instance: not a foreign store`);
      const result = await storeThrough(deployment, intruder, [foreignCopy.path]);
      const share = intruder.foreignInstances === 'Share';
      const expected = share ? STATUS_SUCCESS : STATUS_REFUSED;
      if (!expected.test(result.stderr + result.stdout)) {
        report.push(`${describeTenant(intruder)} sent B's content of A's instance: expected ${share ? 'Success' : '0x0124'}, got ${describeResult(result)}`);
      }
      if (share) recordStore(deployment, intruder, original); // shared with the tenant (labelled for it), not overwritten
    }
    const after = await stateOf(deployment.orthanc, original);
    if (after.md5 !== before.md5 || after.studyDescription !== before.studyDescription || after.studyDescription !== original.studyDescription) {
      report.push(
        `A's instance was overwritten: MD5 ${before.md5} -> ${after.md5}, StudyDescription "${before.studyDescription}" -> "${after.studyDescription}" ` +
          `(A sent "${original.studyDescription}")`,
      );
    }
    // The plugin's own mark of patients of several senders (src/mixing.ts) may come at any moment after A's and B's stores: it is no label of a store.
    const storeLabels = (labels: typeof before.labels) => JSON.stringify(labels, (_key, value: unknown) => (Array.isArray(value) ? value.filter((label) => label !== MIXED_LABEL) : value));
    if (!group.intruders.some((intruder) => intruder.foreignInstances === 'Share') && storeLabels(after.labels) !== storeLabels(before.labels)) {
      report.push(`a refused store changed labels: ${JSON.stringify(before.labels)} -> ${JSON.stringify(after.labels)}`);
    }
  }
  await send(undefined, sent.M);
}

/** Orthanc's labels of every resource of the matrix, against the store history. */
async function checkLabels(deployment: Deployment): Promise<string[]> {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const [level, , uri] of RESOURCE_LEVELS) {
    const response = await deployment.orthanc.rest<{ ID: string; Labels: string[] }[]>('GET', `/${uri}?expand`);
    for (const resource of response.body) {
      seen.add(resource.ID);
      const expected = expectedLabels(deployment, level, resource.ID);
      // Without the plugin's own mark of patients of several senders (test/integration/deletion.test.ts).
      const actual = resource.Labels.filter((label) => label !== MIXED_LABEL).sort();
      if (!deployment.senders.has(resource.ID)) lines.push(`${level} ${resource.ID}: not stored by the test`);
      else if (JSON.stringify(actual) !== JSON.stringify(expected)) lines.push(`${level} ${resource.ID}: labels [${actual}], expected [${expected}]`);
    }
  }
  for (const id of deployment.senders.keys()) if (!seen.has(id)) lines.push(`resource ${id} is missing`);
  return lines;
}

// ---------------------------------------------------------------------------------------
// The expected view of a tenant.

type QueryLevel = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';
const QUERY_LEVELS: QueryLevel[] = ['PATIENT', 'STUDY', 'SERIES', 'IMAGE'];
const RESOURCE_KEY: Record<QueryLevel, keyof Placed['ids']> = { PATIENT: 'patient', STUDY: 'study', SERIES: 'series', IMAGE: 'instance' };
const LEVEL_OF_QUERY: Record<QueryLevel, Level> = { PATIENT: 'Patient', STUDY: 'Study', SERIES: 'Series', IMAGE: 'Instance' };
const UNIQUE: Record<QueryLevel, keyof SyntheticInstance> = {
  PATIENT: 'patientId',
  STUDY: 'studyInstanceUid',
  SERIES: 'seriesInstanceUid',
  IMAGE: 'sopInstanceUid',
};
const UNIQUE_KEYWORD: Record<QueryLevel, string> = {
  PATIENT: 'PatientID',
  STUDY: 'StudyInstanceUID',
  SERIES: 'SeriesInstanceUID',
  IMAGE: 'SOPInstanceUID',
};

const TAG: Record<string, string> = {
  PatientName: '00100010',
  PatientID: '00100020',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018',
  SOPClassUID: '00080016',
  Modality: '00080060',
  StudyDate: '00080020',
  StudyDescription: '00081030',
  AccessionNumber: '00080050',
  SeriesNumber: '00200011',
  InstanceNumber: '00200013',
  ModalitiesInStudy: '00080061',
  SOPClassesInStudy: '00080062',
  NumberOfPatientRelatedStudies: '00201200',
  NumberOfPatientRelatedSeries: '00201202',
  NumberOfPatientRelatedInstances: '00201204',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209',
};

/** How each returned attribute follows from a resource's instances. */
type Rule =
  | { kind: 'one'; field: keyof SyntheticInstance } // a value of one of the instances
  | { kind: 'set'; field: keyof SyntheticInstance } // every distinct value
  | { kind: 'count'; of: keyof Placed['ids'] }; // distinct resources at a level

const one = (field: keyof SyntheticInstance): Rule => ({ kind: 'one', field });
const RETURNED: Record<QueryLevel, Record<string, Rule>> = {
  PATIENT: {
    PatientID: one('patientId'),
    PatientName: one('patientName'),
    NumberOfPatientRelatedStudies: { kind: 'count', of: 'study' },
    NumberOfPatientRelatedSeries: { kind: 'count', of: 'series' },
    NumberOfPatientRelatedInstances: { kind: 'count', of: 'instance' },
  },
  STUDY: {
    PatientID: one('patientId'),
    StudyInstanceUID: one('studyInstanceUid'),
    PatientName: one('patientName'),
    StudyDate: one('studyDate'),
    StudyDescription: one('studyDescription'),
    AccessionNumber: one('accessionNumber'),
    ModalitiesInStudy: { kind: 'set', field: 'modality' },
    SOPClassesInStudy: { kind: 'set', field: 'sopClassUid' },
    NumberOfStudyRelatedSeries: { kind: 'count', of: 'series' },
    NumberOfStudyRelatedInstances: { kind: 'count', of: 'instance' },
  },
  SERIES: {
    PatientID: one('patientId'),
    StudyInstanceUID: one('studyInstanceUid'),
    SeriesInstanceUID: one('seriesInstanceUid'),
    Modality: one('modality'),
    SeriesNumber: one('seriesNumber'),
    NumberOfSeriesRelatedInstances: { kind: 'count', of: 'instance' },
    // Upper-level attributes, asked at a lower level.
    PatientName: one('patientName'),
    StudyDescription: one('studyDescription'),
    AccessionNumber: one('accessionNumber'),
  },
  IMAGE: {
    PatientID: one('patientId'),
    StudyInstanceUID: one('studyInstanceUid'),
    SeriesInstanceUID: one('seriesInstanceUid'),
    SOPInstanceUID: one('sopInstanceUid'),
    SOPClassUID: one('sopClassUid'),
    InstanceNumber: one('instanceNumber'),
    Modality: one('modality'),
    PatientName: one('patientName'),
    StudyDescription: one('studyDescription'),
    AccessionNumber: one('accessionNumber'),
  },
};

/** The instances of a collision that Orthanc holds (A's content for the shared one). */
const heldInstances = (collision: Collision): Placed[] => [...collision.sent.A, ...collision.sent.B, ...collision.sent.M];

/** Every instance sent in a collision, refused ones included (for telling whose a value is). */
const sentInstances = (collision: Collision): Placed[] => [...heldInstances(collision), ...(collision.foreignCopy ? [collision.foreignCopy] : [])];

interface ViewedResource {
  id: string;
  key: string; // PatientID|unique UID
  all: Placed[];
  entitled: Placed[];
}

/** The resources of the collision at a level that show through the tenant, with the instances it sees. */
function view(deployment: Deployment, viewer: Tenant, collision: Collision, level: QueryLevel): ViewedResource[] {
  const byResource = new Map<string, Placed[]>();
  for (const instance of heldInstances(collision)) {
    const id = instance.ids[RESOURCE_KEY[level]];
    byResource.set(id, [...(byResource.get(id) ?? []), instance]);
  }
  const viewed: ViewedResource[] = [];
  for (const [id, all] of byResource) {
    if (!shows(deployment, viewer, LEVEL_OF_QUERY[level], id)) continue;
    const entitled = all.filter((instance) => isEntitled(deployment, viewer, instance));
    if (entitled.length === 0) continue;
    viewed.push({ id, key: `${all[0]!.patientId}|${String(all[0]![UNIQUE[level]])}`, all, entitled });
  }
  return viewed;
}

/** The parts none of whose instances of this collision is entitled to the tenant. */
function foreignParts(deployment: Deployment, viewer: Tenant, collision: Collision): Part[] {
  return PARTS.filter(
    (part) => collision.sent[part].length > 0 && !collision.sent[part].some((instance) => isEntitled(deployment, viewer, instance)),
  );
}


// ---------------------------------------------------------------------------------------
// C-FIND.

const patientIdsOf = (collision: Collision) => [...new Set(heldInstances(collision).map((instance) => instance.patientId))];

/** C-FIND through the tenant. */
async function find(deployment: Deployment, viewer: Tenant, level: QueryLevel, keys: string[]) {
  return pooled(() =>
    findscu({
      port: deployment.ports.get(viewer)!,
      calledAet: viewer.aet,
      callingAet: SCU_AET,
      level,
      model: level === 'PATIENT' ? 'patient' : 'study',
      keys,
    }),
  );
}

function valuesOf(answer: DicomJson, keyword: string): string[] {
  return dicomStrings(answer, TAG[keyword]!);
}

/** The full C-FIND of a collision at a level, compared with the tenant's view. */
async function checkFind(deployment: Deployment, viewer: Tenant, collision: Collision, level: QueryLevel): Promise<string[]> {
  const rules = RETURNED[level];
  const keys = Object.keys(rules).map((keyword) => (keyword === 'PatientID' ? `PatientID=${patientIdsOf(collision).join('\\')}` : keyword));
  const result = await find(deployment, viewer, level, keys);
  const prefix = `${viewer.aet} C-FIND ${level}`;
  if (!result.ok) return [`${prefix}: findscu ${describeResult(result)}`];
  const lines: string[] = [];
  const expected = new Map(view(deployment, viewer, collision, level).map((resource) => [resource.key, resource]));
  const seen = new Set<string>();
  const everything = heldInstances(collision);
  for (const answer of result.answers) {
    const key = `${valuesOf(answer, 'PatientID')[0] ?? ''}|${valuesOf(answer, UNIQUE_KEYWORD[level])[0] ?? ''}`;
    if (seen.has(key)) lines.push(`${prefix}: ${key} answered twice`);
    seen.add(key);
    const resource = expected.get(key);
    if (resource === undefined) {
      const holders = everything.filter((instance) => `${instance.patientId}|${String(instance[UNIQUE[level]])}` === key);
      const entitled = holders.filter((instance) => isEntitled(deployment, viewer, instance));
      lines.push(
        entitled.length === 0
          ? `LEAK ${prefix}: ${key} is answered, it holds nothing of the tenant's (parts ${[...new Set(holders.map((h) => h.part))].join(', ') || 'none'})`
          : `${prefix}: ${key} is answered, but the stores into it do not make it show at this level`,
      );
      continue;
    }
    for (const [keyword, rule] of Object.entries(rules)) {
      const got = valuesOf(answer, keyword);
      lines.push(...compareValue(deployment, viewer, level, `${prefix}: ${key} ${keyword}`, rule, got, resource, collision));
    }
  }
  for (const key of expected.keys()) if (!seen.has(key)) lines.push(`${prefix}: ${key} is missing (the tenant's own)`);
  return lines;
}

/**
 * The values a set attribute may have: every distinct value of the instances, or for a
 * series attribute (ModalitiesInStudy) one value per series, from any of its instances.
 */
function acceptableSets(field: keyof SyntheticInstance, instances: Placed[]): string[][] {
  if (NATURAL_LEVEL[field] !== 'series') return [[...new Set(instances.map((instance) => String(instance[field])))].sort()];
  const options = new Map<string, Set<string>>();
  for (const instance of instances) {
    options.set(instance.ids.series, (options.get(instance.ids.series) ?? new Set()).add(String(instance[field])));
  }
  let choices: string[][] = [[]];
  for (const values of options.values()) choices = choices.flatMap((choice) => [...values].map((value) => [...choice, value]));
  return choices.map((choice) => [...new Set(choice)].sort());
}

/** The level an attribute belongs to: asked at a lower level, it is the ancestor's. */
const NATURAL_LEVEL: Partial<Record<keyof SyntheticInstance, keyof Placed['ids']>> = {
  patientId: 'patient',
  patientName: 'patient',
  studyInstanceUid: 'study',
  studyDate: 'study',
  studyDescription: 'study',
  accessionNumber: 'study',
  seriesInstanceUid: 'series',
  modality: 'series',
  seriesNumber: 'series',
};
const DEPTH: Record<keyof Placed['ids'], number> = { patient: 0, study: 1, series: 2, instance: 3 };

function compareValue(
  deployment: Deployment,
  viewer: Tenant,
  level: QueryLevel,
  prefix: string,
  rule: Rule,
  got: string[],
  resource: ViewedResource,
  collision: Collision,
): string[] {
  const shown = `[${got.join('\\')}]`;
  if (rule.kind === 'count') {
    const count = (instances: Placed[]) => new Set(instances.map((instance) => instance.ids[rule.of])).size;
    const expected = String(count(resource.entitled));
    if (got.length === 1 && got[0] === expected) return [];
    const whole = String(count(resource.all));
    return [
      got.length === 1 && got[0] === whole
        ? `LEAK ${prefix}: ${shown}, counts the instances that are not the tenant's (expected ${expected})`
        : `${prefix}: ${shown}, expected ${expected}`,
    ];
  }
  // The tenant's instances the value may come from: those of the resource, or for an
  // upper-level attribute those of the ancestor it belongs to.
  const natural = NATURAL_LEVEL[rule.field] ?? 'instance';
  const anchor = resource.entitled[0]!.ids[natural];
  const pool =
    rule.kind === 'one' && DEPTH[natural] < DEPTH[RESOURCE_KEY[level]]
      ? heldInstances(collision).filter((instance) => instance.ids[natural] === anchor && isEntitled(deployment, viewer, instance))
      : resource.entitled;
  const own = [...new Set(pool.map((instance) => String(instance[rule.field])))].sort();
  /** The parts whose instances not entitled to the tenant have this value (when the tenant's do not). */
  const foreign = (value: string): Part[] =>
    own.includes(value)
      ? []
      : [
          ...new Set(
            sentInstances(collision)
              .filter((instance) => String(instance[rule.field]) === value)
              .filter((instance) => instance === collision.foreignCopy || !isEntitled(deployment, viewer, instance))
              .map((instance) => (instance === collision.foreignCopy ? (`${instance.part} (refused copy)` as Part) : instance.part)),
          ),
        ];
  if (rule.kind === 'set') {
    const sorted = [...got].sort();
    if (acceptableSets(rule.field, resource.entitled).some((set) => JSON.stringify(set) === JSON.stringify(sorted))) return [];
    const leaked = got.filter((value) => foreign(value).length > 0);
    return [
      leaked.length > 0
        ? `LEAK ${prefix}: ${shown} has ${leaked.join(', ')}, of parts ${[...new Set(leaked.flatMap(foreign))].join(', ')} (expected [${own.join('\\')}])`
        : `${prefix}: ${shown}, expected [${own.join('\\')}]`,
    ];
  }
  if (got.length === 1 && own.includes(got[0]!)) return [];
  const leakedParts = got.length === 1 ? foreign(got[0]!) : [];
  return [
    leakedParts.length > 0
      ? `LEAK ${prefix}: ${shown} is part ${leakedParts.join(', ')}'s value (the tenant's: ${own.join(' or ')})`
      : `${prefix}: ${shown}, expected ${own.join(' or ')}`,
  ];
}

interface Probe {
  level: QueryLevel;
  key: string; // "Keyword=value"
  why: string;
  /** Only this resource (its unique key at the level). */
  uid?: string;
}

/**
 * Queries that match only values of parts foreign to the tenant (or counts that include
 * their instances), on resources the tenant sees or whose ancestors hold those parts:
 * each must find nothing.
 */
function probes(deployment: Deployment, viewer: Tenant, collision: Collision): Probe[] {
  const result: Probe[] = [];
  const foreign = foreignParts(deployment, viewer, collision);
  for (const level of QUERY_LEVELS) {
    const viewed = view(deployment, viewer, collision, level);
    // The foreign parts sharing a patient with what the tenant sees at this level.
    const patients = new Set(viewed.map((resource) => resource.entitled[0]!.ids.patient));
    const near = foreign.filter((part) => collision.sent[part].some((instance) => patients.has(instance.ids.patient)));
    for (const part of near) {
      const values = PART_VALUES[part];
      const add = (key: string) => result.push({ level, key, why: `part ${part}'s value` });
      add(`PatientName=${NAME_PREFIX[part]}*`);
      if (level !== 'PATIENT') {
        add(`StudyDescription=${values.description}`);
        add(`AccessionNumber=${collision.sent[part][0]!.accessionNumber}`);
      }
      if (level === 'STUDY') add(`ModalitiesInStudy=${values.series[0]!.modality}`);
      if (level === 'SERIES' || level === 'IMAGE') add(`Modality=${values.series[0]!.modality}`);
    }
    // Counters of shared resources that hold other instances than the tenant's.
    const counter = { PATIENT: 'NumberOfPatientRelatedInstances', STUDY: 'NumberOfStudyRelatedInstances', SERIES: 'NumberOfSeriesRelatedInstances' } as const;
    if (level !== 'IMAGE') {
      for (const resource of viewed) {
        if (resource.all.length !== resource.entitled.length) {
          result.push({
            level,
            uid: String(resource.all[0]![UNIQUE[level]]),
            key: `${counter[level]}=${resource.all.length}`,
            why: `the count of every instance of ${resource.key} (the tenant has ${resource.entitled.length})`,
          });
        }
      }
    }
  }
  return result;
}

async function checkProbe(deployment: Deployment, viewer: Tenant, collision: Collision, probe: Probe): Promise<string[]> {
  const keys = [`PatientID=${probe.level === 'PATIENT' && probe.uid ? probe.uid : patientIdsOf(collision).join('\\')}`, probe.key];
  if (probe.level !== 'PATIENT') keys.push(probe.uid ? `${UNIQUE_KEYWORD[probe.level]}=${probe.uid}` : UNIQUE_KEYWORD[probe.level]);
  const result = await find(deployment, viewer, probe.level, keys);
  const prefix = `${viewer.aet} C-FIND ${probe.level} ${probe.key} (${probe.why})`;
  if (!result.ok) return [`${prefix}: findscu ${describeResult(result)}`];
  if (result.answers.length === 0) return [];
  const found = result.answers.map((answer) => valuesOf(answer, UNIQUE_KEYWORD[probe.level])[0] ?? '?');
  return [`LEAK ${prefix}: finds ${found.join(', ')}`];
}

interface OwnProbe {
  level: QueryLevel;
  key: string; // "Keyword=value"
  resource: ViewedResource;
}

/**
 * Queries by the tenant's own values (those of its instances in the resource, when they
 * agree) of what it sees in a patient that also holds instances that are not its own
 * (elsewhere, Orthanc's values are the tenant's): each must find that resource, and only
 * it. At IMAGE level, one instance per series and part.
 */
function ownProbes(deployment: Deployment, viewer: Tenant, collision: Collision): OwnProbe[] {
  const result: OwnProbe[] = [];
  const shared = new Set(
    heldInstances(collision)
      .filter((instance) => !isEntitled(deployment, viewer, instance))
      .map((instance) => instance.ids.patient),
  );
  for (const level of QUERY_LEVELS) {
    const probed = new Set<string>();
    for (const resource of view(deployment, viewer, collision, level)) {
      const first = resource.entitled[0]!;
      if (!shared.has(first.ids.patient)) continue;
      if (level === 'IMAGE' && probed.has(`${first.ids.series}|${first.part}`)) continue;
      probed.add(`${first.ids.series}|${first.part}`);
      const add = (key: string) => result.push({ level, key, resource });
      const single = (field: keyof SyntheticInstance, key: (value: string) => string) => {
        const values = [...new Set(resource.entitled.map((instance) => String(instance[field])))];
        if (values.length === 1) add(key(values[0]!));
      };
      single('patientName', (name) => `PatientName=${name.split('^')[0]}*`);
      if (level !== 'PATIENT') {
        single('studyDescription', (value) => `StudyDescription=${value}`);
        single('accessionNumber', (value) => `AccessionNumber=${value}`);
      }
      if (level === 'SERIES' || level === 'IMAGE') single('modality', (value) => `Modality=${value}`);
      if (level === 'STUDY') {
        // A series' modality, when the tenant's instances of it agree.
        const bySeries = new Map<string, Set<string>>();
        for (const instance of resource.entitled) bySeries.set(instance.ids.series, (bySeries.get(instance.ids.series) ?? new Set()).add(instance.modality));
        const modalities = [...bySeries.values()].filter((values) => values.size === 1).map((values) => [...values][0]!);
        for (const modality of new Set(modalities)) add(`ModalitiesInStudy=${modality}`);
      }
      const counter = { PATIENT: 'NumberOfPatientRelatedInstances', STUDY: 'NumberOfStudyRelatedInstances', SERIES: 'NumberOfSeriesRelatedInstances' } as const;
      if (level !== 'IMAGE') add(`${counter[level]}=${resource.entitled.length}`);
    }
  }
  return result;
}

async function checkOwnProbe(deployment: Deployment, viewer: Tenant, collision: Collision, probe: OwnProbe): Promise<string[]> {
  const first = probe.resource.entitled[0]!;
  const keys = [`PatientID=${first.patientId}`, probe.key];
  if (probe.level !== 'PATIENT') keys.push(`${UNIQUE_KEYWORD[probe.level]}=${String(first[UNIQUE[probe.level]])}`);
  const result = await find(deployment, viewer, probe.level, keys);
  const prefix = `${viewer.aet} C-FIND ${probe.level} ${probe.key} (the tenant's own value of ${probe.resource.key})`;
  if (!result.ok) return [`${prefix}: findscu ${describeResult(result)}`];
  if (result.answers.length === 0) return [`${prefix}: finds nothing`];
  const lines: string[] = [];
  const visible = new Set(view(deployment, viewer, collision, probe.level).map((resource) => resource.key));
  for (const answer of result.answers) {
    const key = `${valuesOf(answer, 'PatientID')[0] ?? ''}|${valuesOf(answer, UNIQUE_KEYWORD[probe.level])[0] ?? ''}`;
    if (key === probe.resource.key) continue;
    lines.push(visible.has(key) ? `${prefix}: also finds ${key}` : `LEAK ${prefix}: finds ${key}, which holds nothing the tenant sees`);
  }
  if (result.answers.length > 1) lines.push(`${prefix}: ${result.answers.length} answers`);
  return lines;
}

// ---------------------------------------------------------------------------------------
// C-MOVE and C-GET.

interface Retrieval {
  level: QueryLevel;
  keyword: string;
  values: string[];
  /** Values of the parts foreign to the tenant only: whatever is sent was found by them. */
  foreign?: boolean;
}

function retrievals(deployment: Deployment, viewer: Tenant, collision: Collision): Retrieval[] {
  const held = heldInstances(collision);
  const list: Retrieval[] = QUERY_LEVELS.map((level) => ({
    level,
    keyword: UNIQUE_KEYWORD[level],
    values: [...new Set(held.map((instance) => String(instance[UNIQUE[level]])))],
  }));
  // By the tenant's own AccessionNumbers, and by those of the parts foreign to it (which
  // match nothing of its own).
  const own = held.filter((instance) => isEntitled(deployment, viewer, instance)).map((instance) => instance.accessionNumber);
  if (own.length > 0) list.push({ level: 'STUDY', keyword: 'AccessionNumber', values: [...new Set(own)] });
  const foreign = foreignParts(deployment, viewer, collision);
  if (foreign.length > 0) {
    list.push({
      level: 'STUDY',
      keyword: 'AccessionNumber',
      values: [...new Set(foreign.flatMap((part) => collision.sent[part].map((instance) => instance.accessionNumber)))],
      foreign: true,
    });
  }
  return list;
}

/** The SOP Instance UIDs that a retrieve through the tenant must send. */
function expectedRetrieve(deployment: Deployment, viewer: Tenant, collision: Collision, retrieval: Retrieval): Placed[] {
  const field: keyof SyntheticInstance = retrieval.keyword === 'AccessionNumber' ? 'accessionNumber' : UNIQUE[retrieval.level];
  return view(deployment, viewer, collision, retrieval.level)
    .filter((resource) => resource.entitled.some((instance) => retrieval.values.includes(String(instance[field]))))
    .flatMap((resource) => resource.entitled);
}

interface Delivery {
  ok: boolean;
  output: string;
  /** SOP Instance UIDs received, once per C-STORE sub-operation. */
  received: string[];
  completed: number | undefined;
  /** StudyDescription of each received file, by SOP Instance UID. */
  descriptions: Map<string, string>;
}

const sopOfFile = (name: string) => name.slice(name.indexOf('.') + 1);

async function describeFiles(directory: string, names: string[], wanted: Set<string>): Promise<Map<string, string>> {
  const descriptions = new Map<string, string>();
  for (const name of names) {
    if (!wanted.has(sopOfFile(name))) continue;
    const dump = await runTool('dcmdump', ['+P', '0008,1030', join(directory, name)]);
    descriptions.set(sopOfFile(name), dump.stdout.match(/\[([^\]]*)\]/)?.[1] ?? '');
  }
  return descriptions;
}

function retrieveArgs(retrieval: Retrieval): string[] {
  return [
    retrieval.level === 'PATIENT' ? '-P' : '-S',
    '-k',
    `QueryRetrieveLevel=${retrieval.level}`,
    '-k',
    `${retrieval.keyword}=${retrieval.values.join('\\')}`,
  ];
}

async function cmove(deployment: Deployment, viewer: Tenant, retrieval: Retrieval, watch: Set<string>): Promise<Delivery> {
  return pooled(() =>
    withDestination(async (destination) => {
      const since = destination.log.length;
      const result = await runTool('movescu', [
        '-d',
        '-aet',
        SCU_AET,
        '-aec',
        viewer.aet,
        '-aem',
        destination.aet,
        ...retrieveArgs(retrieval),
        '127.0.0.1',
        String(deployment.ports.get(viewer)!),
      ]);
      const output = result.stdout + result.stderr;
      const completed = [...output.matchAll(/Completed Suboperations\s*:\s*(\d+|none)/g)].map((match) => (match[1] === 'none' ? 0 : Number(match[1]))).pop();
      const stored = () => [...destination.log.slice(since).matchAll(/storing DICOM file: (\S+)/g)].map((match) => match[1]!);
      // storescp logs each file before it answers; its pipe may still be read after movescu ends
      // (waits only for lines still missing: generous, for a loaded host).
      for (let waited = 0; waited < 15_000 && stored().length < (completed ?? 0); waited += 10) await sleep(10);
      await sleep(20);
      const files = stored();
      const names = files.map((path) => path.slice(path.lastIndexOf('/') + 1));
      return {
        // The last response's status (movescu -d dumps every response).
        ok: result.ok && [...output.matchAll(/DIMSE Status\s*:\s*(0x[0-9a-fA-F]{4})/g)].pop()?.[1] === '0x0000',
        output: describeResult(result),
        received: names.map(sopOfFile),
        completed,
        descriptions: await describeFiles(destination.directory, names, watch),
      };
    }),
  );
}

async function cget(deployment: Deployment, viewer: Tenant, retrieval: Retrieval, watch: Set<string>, work: string): Promise<Delivery> {
  return pooled(async () => {
    const directory = await mkdtemp(join(work, 'get-'));
    try {
      const result = await runTool('getscu', [
        '-v',
        '-aet',
        SCU_AET,
        '-aec',
        viewer.aet,
        '-od',
        directory,
        ...retrieveArgs(retrieval),
        '127.0.0.1',
        String(deployment.ports.get(viewer)!),
      ]);
      const output = result.stdout + result.stderr;
      const names = await readdir(directory);
      const requests = (output.match(/Received C-STORE Request/g) ?? []).length;
      const completed = output.match(/Number of Completed Suboperations\s*:\s*(\d+)/)?.[1];
      // A file per instance; an instance received twice overwrites its file: count the requests.
      const received = names.map(sopOfFile);
      for (let extra = received.length; extra < requests; extra++) received.push('(one more C-STORE)');
      return {
        ok: result.ok,
        output: describeResult(result),
        received,
        completed: completed === undefined ? (requests === 0 ? 0 : undefined) : Number(completed),
        descriptions: await describeFiles(directory, names, watch),
      };
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
}

async function checkRetrieve(
  deployment: Deployment,
  viewer: Tenant,
  collision: Collision,
  retrieval: Retrieval,
  operation: 'C-MOVE' | 'C-GET',
  work: string,
): Promise<string[]> {
  const expected = expectedRetrieve(deployment, viewer, collision, retrieval);
  // Different instances may share a SOPInstanceUID (under other PatientIDs): count them.
  const expectedCounts = new Map<string, number>();
  for (const instance of expected) expectedCounts.set(instance.sopInstanceUid, (expectedCounts.get(instance.sopInstanceUid) ?? 0) + 1);
  const expectedUids = new Set(expectedCounts.keys());
  // The shared SOPInstanceUID: the content sent must be the one Orthanc holds (A's).
  const watch = new Set(collision.foreignCopy ? [collision.foreignCopy.sopInstanceUid] : []);
  const delivery = operation === 'C-MOVE' ? await cmove(deployment, viewer, retrieval, watch) : await cget(deployment, viewer, retrieval, watch, work);
  const shownValues = retrieval.values.length > 2 ? `${retrieval.values.length} values` : retrieval.values.join('\\');
  const prefix = `${viewer.aet} ${operation} ${retrieval.level} by ${retrieval.keyword} (${shownValues})`;
  const lines: string[] = [];
  if (!delivery.ok) lines.push(`${prefix}: failed, ${delivery.output}`);
  const held = heldInstances(collision);
  const counts = new Map<string, number>();
  for (const uid of delivery.received) counts.set(uid, (counts.get(uid) ?? 0) + 1);
  for (const [uid, count] of counts) {
    const wanted = expectedCounts.get(uid) ?? 0;
    if (wanted > 0 && count !== wanted) lines.push(`${prefix}: ${uid} sent ${count} times, expected ${wanted}`);
    if (!expectedUids.has(uid) && retrieval.foreign) {
      lines.push(`LEAK ${prefix}: sends ${uid}: the study is found by another part's AccessionNumber`);
    } else if (!expectedUids.has(uid)) {
      const holders = held.filter((instance) => instance.sopInstanceUid === uid);
      const entitled = holders.some((instance) => isEntitled(deployment, viewer, instance));
      lines.push(
        entitled
          ? `${prefix}: sends ${uid}, which is the tenant's but not in the matched resources`
          : `LEAK ${prefix}: sends ${uid} (part ${[...new Set(holders.map((h) => h.part))].join(', ') || '?'}, not the tenant's)`,
      );
    }
  }
  for (const uid of expectedUids) if (!counts.has(uid)) lines.push(`${prefix}: does not send ${uid} (the tenant's)`);
  if (delivery.completed !== undefined && delivery.completed !== delivery.received.length) {
    lines.push(`${prefix}: reports ${delivery.completed} completed sub-operations, ${delivery.received.length} received`);
  }
  for (const [uid, description] of delivery.descriptions) {
    const original = collision.sent.A.find((instance) => instance.sopInstanceUid === uid);
    if (original !== undefined && description !== original.studyDescription) {
      lines.push(`LEAK ${prefix}: ${uid} is sent with StudyDescription "${description}", not the "${original.studyDescription}" Orthanc holds`);
    }
  }
  return lines;
}

// ---------------------------------------------------------------------------------------
// Running the matrix.

const OPERATIONS = ['C-STORE', 'C-FIND', 'C-MOVE', 'C-GET'] as const;
type Operation = (typeof OPERATIONS)[number];

const casesOf = (group: Group, overwrite: boolean): CaseSpec[] =>
  CASES.filter((spec) => (group.cases ?? CASES.map((c) => c.key)).includes(spec.key) && (!overwrite || spec.overwriteMatters));

async function runChecks(deployment: Deployment, work: string): Promise<void> {
  const jobs: Promise<void>[] = [];
  const add = (collision: Collision, operation: Operation, lines: Promise<string[]>) => {
    const key = `${collision.group.key}/${collision.spec.key}/${operation}`;
    if (!deployment.reports.has(key)) deployment.reports.set(key, []);
    jobs.push(lines.then((found) => void deployment.reports.get(key)!.push(...found)));
  };
  for (const collision of deployment.collisions) {
    for (const viewer of collision.group.viewers) {
      for (const level of QUERY_LEVELS) add(collision, 'C-FIND', checkFind(deployment, viewer, collision, level));
      for (const probe of probes(deployment, viewer, collision)) add(collision, 'C-FIND', checkProbe(deployment, viewer, collision, probe));
      for (const probe of ownProbes(deployment, viewer, collision)) add(collision, 'C-FIND', checkOwnProbe(deployment, viewer, collision, probe));
      for (const retrieval of retrievals(deployment, viewer, collision)) {
        add(collision, 'C-MOVE', checkRetrieve(deployment, viewer, collision, retrieval, 'C-MOVE', work));
        add(collision, 'C-GET', checkRetrieve(deployment, viewer, collision, retrieval, 'C-GET', work));
      }
    }
  }
  await allSettled(jobs);
  for (const lines of deployment.reports.values()) lines.sort();
}

// ---------------------------------------------------------------------------------------
// Known findings: a cell of the matrix that shows one is a "KNOWN LEAK" test (something
// that is not the tenant's shows through it) or a "KNOWN LIMIT" test (the tenant's own
// data is not found by its own values: a miss, nothing of another sender shows). Such a
// test checks that every finding is of the listed kinds and that each listed kind still
// shows, so it fails once the plugin changes: then drop the entry. A LIMIT never covers a
// "LEAK" line. Anything else fails the test.
//
// Fixed, and now checked as plain cells (no entry): ANCESTOR_TAGS (values of an ancestor
// created by another sender, at SERIES and IMAGE level), SERIES_MODALITY (another
// sender's Modality in ModalitiesInStudy), SAME_UID_MERGE (studies with one UID under two
// PatientIDs merged), ACCESSION_RETRIEVE (a retrieve by another sender's AccessionNumber
// sending the tenant's instances of the study).

interface Known {
  kind: 'LEAK' | 'LIMIT';
  what: string;
  lines: RegExp;
}

type KnownKey = 'ACCESSION_FIRST_SENDER' | 'OWN_VALUE_FIRST_SENDER' | 'OWN_COUNT_SHARED';

const KNOWN: Record<KnownKey, Known> = {
  ACCESSION_FIRST_SENDER: {
    kind: 'LIMIT',
    what:
      'src/move.ts instancesToRetrieve(), by design (README "Known limits"): a retrieve at STUDY level by ' +
      'AccessionNumber matches the study on the AccessionNumber Orthanc keeps for it, from its first instance, then ' +
      'keeps the instances whose own file carries the requested one: on a study first created by another sender (here ' +
      'A), B\'s own AccessionNumber matches no study and B\'s instances of it are not sent (a miss; A\'s AccessionNumber ' +
      'sends nothing through B either)',
    lines: /^[A-Z_]+ C-(MOVE|GET) STUDY by AccessionNumber \([^)]*\): does not send \S+ \(the tenant's\)$/,
  },
  OWN_VALUE_FIRST_SENDER: {
    kind: 'LIMIT',
    what:
      'src/find.ts findThroughTenant(), by design (README "Known limits"): /tools/find matches the values Orthanc ' +
      'keeps for the patient, study and series (from their first instance, and ModalitiesInStudy from the series\' ' +
      'Modality): on a resource first created by another sender, the tenant\'s own value of PatientName, ' +
      'StudyDescription, AccessionNumber, Modality or ModalitiesInStudy finds nothing (a miss; the answers, when ' +
      'found otherwise, show the tenant\'s own values, and the other sender\'s values find nothing either)',
    lines: /^[A-Z_]+ C-FIND [A-Z]+ (PatientName|StudyDescription|AccessionNumber|Modality|ModalitiesInStudy)=.* \(the tenant's own value of \S+\): finds nothing$/,
  },
  OWN_COUNT_SHARED: {
    kind: 'LIMIT',
    what:
      'src/find.ts findThroughTenant() + src/find-entitled.ts restrictToEntitled(): a computed counter as a matching ' +
      'key (NumberOfPatientRelatedInstances, NumberOfStudyRelatedInstances, NumberOfSeriesRelatedInstances) is matched ' +
      'by /tools/find on the whole resource, every sender\'s instances counted, then checked again on the tenant\'s own ' +
      'count: on a patient, study or series that also holds instances that are not the tenant\'s, the tenant\'s own ' +
      'count finds nothing, whoever created it (a miss; the whole count finds nothing either). Not in README "Known ' +
      'limits"; test/integration/find.test.ts has it as BUG_ENTITLED_CANDIDATES',
    lines: /^[A-Z_]+ C-FIND [A-Z]+ NumberOf(Patient|Study|Series)RelatedInstances=\d+ \(the tenant's own value of \S+\): finds nothing$/,
  },
};

const SHARED_ANCESTOR_CASES: CaseKey[] = ['study', 'series', 'sop'];
const SHARED_PATIENT_CASES: CaseKey[] = ['patient', ...SHARED_ANCESTOR_CASES];
const KNOWN_CELLS: { cases: CaseKey[]; groups: string[]; operations: Operation[]; known: KnownKey[] }[] = [
  { cases: SHARED_ANCESTOR_CASES, groups: ['all', 'any', 'none'], operations: ['C-MOVE', 'C-GET'], known: ['ACCESSION_FIRST_SENDER'] },
  { cases: SHARED_PATIENT_CASES, groups: ['all', 'any', 'none', 'share'], operations: ['C-FIND'], known: ['OWN_VALUE_FIRST_SENDER', 'OWN_COUNT_SHARED'] },
];

function knownFindings(group: Group, spec: CaseSpec, operation: Operation): KnownKey[] {
  return KNOWN_CELLS.filter((cell) => cell.cases.includes(spec.key) && cell.groups.includes(group.key) && cell.operations.includes(operation)).flatMap(
    (cell) => cell.known,
  );
}

// ---------------------------------------------------------------------------------------
// Beyond the matrix: the stores of a None tenant. Whatever it stores carries its labels,
// which it does not see: an instance Orthanc holds that the tenant is entitled to (that
// lacks them) came through another tenant or the main port, so every instance Orthanc
// holds is foreign to it. Another content of A's instance (stored through SEND_A) sent by
// NOT_B ("Reject", the default) is refused with 0x0124 and changes nothing; sent by
// NOT_B_SHARE (None [none_b], "Share"), it is accepted, A's instance is labelled with
// NOT_B_SHARE's labels at its LabelsStoreLevels and is never overwritten. By the label
// rule, A's instance is then SEND_B's (All [none_b]) and no longer NOT_B's: what "Share"
// means for a None tenant (it shares into the labels it stores with; it could send the
// instance anywhere by C-MOVE anyway). With OverwriteInstances false and true.

interface NoneStoreCase {
  key: string;
  title: string;
  /** Who stores the instance first. */
  first: Tenant;
  /** Who sends it again: another content (B's), or the very same file (again). */
  sender: Tenant;
  again: boolean;
  status: 'refused (0x0124)' | 'Success';
  /** The labels the second store adds, by level. */
  added: Partial<Record<Level, string[]>>;
  /** Who finds and receives the instance afterwards (its first content); the others get nothing. */
  seenBy: Tenant[];
  /** A KNOWN LIMIT marker: what the test shows is a miss by design. */
  limit?: string;
}

const NONE_VIEWERS = [SEND_A, SEND_B, NOT_B, NOT_B_SHARE];
const NONE_STORES: NoneStoreCase[] = [
  {
    key: 'reject',
    title: 'NOT_B ("Reject") sends another content of A\'s instance (stored through SEND_A, NOT_B is entitled to it): refused',
    first: SEND_A,
    sender: NOT_B,
    again: false,
    status: 'refused (0x0124)',
    added: {},
    seenBy: [SEND_A, NOT_B, NOT_B_SHARE],
  },
  {
    key: 'share',
    title:
      'NOT_B_SHARE ("Share") sends another content of A\'s instance (stored through SEND_A): labelled none_b, not overwritten; ' +
      'then SEND_B, not the None tenants, sees A\'s content',
    first: SEND_A,
    sender: NOT_B_SHARE,
    again: false,
    status: 'Success',
    added: { Study: ['none_b'], Series: ['none_b'], Instance: ['none_b'] },
    seenBy: [SEND_A, SEND_B],
  },
  {
    key: 'own-reject',
    title: 'NOT_B ("Reject") sends again an instance it stored itself: refused, unchanged',
    first: NOT_B,
    sender: NOT_B,
    again: true,
    status: 'refused (0x0124)',
    added: {},
    seenBy: [SEND_B],
    limit:
      'NONE_RESEND_OWN: src/store.ts isEntitled() is false for a None tenant, by design: an instance it stored itself ' +
      'is foreign to it too, so sending it again (a retry) is refused with 0x0124 ("Reject"); nothing is lost (the ' +
      'instance stays, labelled), but the sender sees a refusal, and with OverwriteInstances it cannot replace it',
  },
  {
    key: 'own-share',
    title: 'NOT_B_SHARE ("Share") sends again an instance it stored itself: Success, unchanged',
    first: NOT_B_SHARE,
    sender: NOT_B_SHARE,
    again: true,
    status: 'Success',
    added: {},
    seenBy: [SEND_B],
  },
];

interface NoneStore {
  original: Placed;
  sent: Placed;
  store: DcmtkResult;
  before: InstanceState;
  after: InstanceState;
  /** SOP Instance UIDs and StudyDescriptions found (C-FIND IMAGE) and received (C-GET) through each tenant. */
  seen: Record<string, { found: string[]; received: string[] }>;
}

async function writeNoneStore(directory: string, index: number): Promise<{ original: Placed; other: Placed }> {
  const make = async (part: Part) => {
    const values = PART_VALUES[part];
    const root = `${ROOT}.9.${index + 1}`;
    const written = await writeInstance(join(directory, 'none-stores', String(index), part), {
      patientId: `N${index + 1}-P`,
      patientName: values.name,
      specificCharacterSet: values.charset,
      studyInstanceUid: `${root}.1`,
      seriesInstanceUid: `${root}.2`,
      sopInstanceUid: `${root}.3`,
      modality: values.series[0]!.modality,
      sopClassUid: SOP_CLASS[values.series[0]!.modality],
      studyDescription: values.description,
      accessionNumber: `N${index + 1}-${part}`,
    });
    return { ...written, part, ids: orthancIds(written) };
  };
  return { original: await make('A'), other: await make('B') };
}

async function runNoneStore(
  deployment: Deployment,
  spec: NoneStoreCase,
  data: { original: Placed; other: Placed },
  work: string,
): Promise<NoneStore> {
  const { original } = data;
  const sent = spec.again ? original : data.other;
  const first = await storeThrough(deployment, spec.first, [original.path]);
  if (!first.ok) throw new Error(`${spec.first.aet} could not store the instance: ${describeResult(first)}`);
  const before = await stateOf(deployment.orthanc, original);
  const store = await storeThrough(deployment, spec.sender, [sent.path]);
  const after = await stateOf(deployment.orthanc, original);
  const seen: NoneStore['seen'] = {};
  for (const viewer of NONE_VIEWERS) {
    const found = await find(deployment, viewer, 'IMAGE', [`SOPInstanceUID=${original.sopInstanceUid}`, 'StudyDescription']);
    const retrieval: Retrieval = { level: 'IMAGE', keyword: 'SOPInstanceUID', values: [original.sopInstanceUid] };
    const got = await cget(deployment, viewer, retrieval, new Set([original.sopInstanceUid]), work);
    seen[viewer.aet] = {
      found: found.answers.map((answer) => `${valuesOf(answer, 'SOPInstanceUID')[0]} "${valuesOf(answer, 'StudyDescription')[0]}"`),
      received: got.received.map((uid) => `${uid} "${got.descriptions.get(uid) ?? '?'}"`),
    };
  }
  return { original, sent, store, before, after, seen };
}

// ---------------------------------------------------------------------------------------
// Beyond the matrix: what Orthanc keeps of a deleted instance. A creates a patient, a study
// and a series (ALL_A), B adds its own instance to that series (ALL_B: the SeriesInstanceUID
// collision), then A's instance is deleted (REST DELETE, as an administrator, or a
// /modify that moves it to another patient, would). Orthanc keeps the main DICOM tags it
// took from A's instance on the patient, the study and the series, which now hold B's
// instance only: nothing tells B's C-FIND that they are not B's values.

interface DeletedData {
  a: Placed;
  b: Placed;
}

async function writeDeleted(directory: string): Promise<DeletedData> {
  const make = async (part: 'A' | 'B', index: number) => {
    const values = PART_VALUES[part];
    const modality = values.series[0]!.modality;
    const written = await writeInstance(join(directory, 'deleted', part), {
      patientId: 'D1-P',
      patientName: values.name,
      specificCharacterSet: values.charset,
      studyInstanceUid: `${ROOT}.8.1`,
      seriesInstanceUid: `${ROOT}.8.2`,
      sopInstanceUid: `${ROOT}.8.3.${index}`,
      modality,
      sopClassUid: SOP_CLASS[modality],
      studyDescription: values.description,
      accessionNumber: `D1-${part}`,
    });
    return { ...written, part, ids: orthancIds(written) };
  };
  return { a: await make('A', 1), b: await make('B', 2) };
}

/** Every finding through ALL_B (and ALL_A) once A's instance is deleted: "LEAK ..." when A's values show or match. */
async function runDeleted(deployment: Deployment, { a, b }: DeletedData, work: string): Promise<string[]> {
  for (const [through, instance] of [[ALL_A, a], [ALL_B, b]] as const) {
    const stored = await storeThrough(deployment, through, [instance.path]);
    if (!stored.ok) throw new Error(`${through.aet} could not store ${instance.sopInstanceUid}: ${describeResult(stored)}`);
  }
  // The patient, shared, is marked as holding instances of several senders moments after
  // B's store; once A's instance is deleted, the plugin rebuilds it from B's and unmarks it
  // (src/mixing.ts). test/integration/deletion.test.ts looks at this more closely.
  const patientLabels = async () => (await deployment.orthanc.rest<string[]>('GET', `/patients/${b.ids.patient}/labels`)).body;
  await waitForCondition('the shared patient to be marked multitenant-mixed', async () => (await patientLabels()).includes('multitenant-mixed'));
  const deleted = await deployment.orthanc.rest('DELETE', `/instances/${a.ids.instance}`);
  if (deleted.status !== 200) throw new Error(`cannot delete A's instance: HTTP ${deleted.status}`);
  await waitForCondition('the patient to be rebuilt from B\'s instance', async () => !(await patientLabels()).includes('multitenant-mixed'));
  const findings: string[] = [];
  const RETURNED_HERE: Record<QueryLevel, [string, keyof SyntheticInstance][]> = {
    PATIENT: [['PatientName', 'patientName']],
    STUDY: [['PatientName', 'patientName'], ['StudyDescription', 'studyDescription'], ['AccessionNumber', 'accessionNumber'], ['ModalitiesInStudy', 'modality']],
    SERIES: [['PatientName', 'patientName'], ['StudyDescription', 'studyDescription'], ['AccessionNumber', 'accessionNumber'], ['Modality', 'modality']],
    IMAGE: [['PatientName', 'patientName'], ['StudyDescription', 'studyDescription'], ['AccessionNumber', 'accessionNumber'], ['Modality', 'modality']],
  };
  const probeKey = (keyword: string, value: string) => (keyword === 'PatientName' ? `PatientName=${value.split('^')[0]}*` : `${keyword}=${value}`);
  for (const level of QUERY_LEVELS) {
    const unique = level === 'PATIENT' ? [] : [UNIQUE_KEYWORD[level]];
    // The answer: B's values only.
    const result = await find(deployment, ALL_B, level, ['PatientID=D1-P', ...unique, ...RETURNED_HERE[level].map(([keyword]) => keyword)]);
    const prefix = `ALL_B C-FIND ${level}`;
    if (result.answers.length !== 1) findings.push(`${prefix}: ${result.answers.length} answers, expected 1 (${describeResult(result)})`);
    for (const answer of result.answers) {
      for (const [keyword, field] of RETURNED_HERE[level]) {
        const got = valuesOf(answer, keyword).join('\\');
        if (got === String(b[field])) continue;
        findings.push(
          got === String(a[field])
            ? `LEAK ${prefix}: ${keyword} [${got}] is the deleted instance's (A's), B's is ${String(b[field])}`
            : `${prefix}: ${keyword} [${got}], expected ${String(b[field])}`,
        );
      }
    }
    // A's values find nothing; B's own values find B's resource.
    for (const [keyword, field] of RETURNED_HERE[level]) {
      for (const [part, instance] of [['A', a], ['B', b]] as const) {
        const key = probeKey(keyword, String(instance[field]));
        const found = await find(deployment, ALL_B, level, ['PatientID=D1-P', ...unique, key]);
        if (part === 'A' && found.answers.length > 0) findings.push(`LEAK ${prefix} ${key} (the deleted instance's value): finds B's resource`);
        if (part === 'B' && found.answers.length !== 1) findings.push(`${prefix} ${key} (B's own value): ${found.answers.length} answers, expected 1`);
      }
    }
    // Nothing through A, whose labels the resources still carry.
    const throughA = await find(deployment, ALL_A, level, ['PatientID=D1-P', ...unique]);
    if (throughA.answers.length > 0) findings.push(`LEAK ALL_A C-FIND ${level}: finds ${throughA.answers.length} resources, A holds nothing any more`);
  }
  // Retrieves by the deleted instance's AccessionNumber (through B) and by the study (through A) send nothing.
  const checks: [Tenant, Retrieval][] = [
    [ALL_B, { level: 'STUDY', keyword: 'AccessionNumber', values: [a.accessionNumber] }],
    [ALL_A, { level: 'STUDY', keyword: 'StudyInstanceUID', values: [a.studyInstanceUid] }],
  ];
  for (const [through, retrieval] of checks) {
    const got = await cget(deployment, through, retrieval, new Set(), work);
    if (got.received.length > 0) findings.push(`LEAK ${through.aet} C-GET STUDY by ${retrieval.keyword}: sends ${got.received.join(', ')}`);
  }
  return findings;
}

// ---------------------------------------------------------------------------------------

/** Polls a condition of Orthanc's state until it holds; fails with `what` after a minute. */
async function waitForCondition(what: string, condition: () => Promise<boolean>): Promise<void> {
  for (const started = Date.now(); Date.now() - started < 60_000; await sleep(100)) {
    if (await condition()) return;
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Promise.all that lets every promise settle before it fails: nothing runs on behind a failure. */
async function allSettled<T>(promises: Promise<T>[]): Promise<T[]> {
  const outcomes = await Promise.allSettled(promises);
  const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
  return outcomes.map((outcome) => (outcome as PromiseFulfilledResult<T>).value);
}

let work: string;
const deployments = new Map<boolean, Deployment>();
/** The stores of a None tenant, by "OverwriteInstances/case". */
const noneStores = new Map<string, NoneStore>();
/** runDeleted(), with OverwriteInstances false. */
let deletedFindings: string[] = [];
/** checkLabels() once the matrix is stored and checked. */
const labelFindings = new Map<boolean, string[]>();
const startedAt = performance.now();

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'isolation-test-'));
  const destinationList = await allSettled(Array.from({ length: CONCURRENCY }, (_, index) => startDestination(work, index)));
  destinations.push(...destinationList);
  const writing = allSettled(
    GROUPS.flatMap((group, groupIndex) =>
      CASES.flatMap((spec, caseIndex) =>
        (group.cases ?? CASES.map((c) => c.key)).includes(spec.key) ? [writeCollision(join(work, 'data'), group, groupIndex, spec, caseIndex)] : [],
      ),
    ),
  );
  const starting = allSettled([startDeployment(false, destinationList), startDeployment(true, destinationList)]);
  await Promise.allSettled([writing, starting]);
  const [written, started] = [await writing, await starting];
  for (const deployment of started) {
    deployments.set(deployment.overwrite, deployment);
    for (const collision of written) {
      if (casesOf(collision.group, deployment.overwrite).includes(collision.spec)) deployment.collisions.push(collision);
    }
  }
  // The stores of each collision in order; the collisions side by side.
  await allSettled(started.flatMap((deployment) => deployment.collisions.map((collision) => storeCollision(deployment, collision))));
  await allSettled(started.map((deployment) => runChecks(deployment, work)));
  for (const deployment of started) labelFindings.set(deployment.overwrite, await checkLabels(deployment));
  const noneStoreData = await Promise.all(NONE_STORES.map((_, index) => writeNoneStore(join(work, 'data'), index)));
  await allSettled(
    started.flatMap((deployment) =>
      NONE_STORES.map(async (spec, index) =>
        noneStores.set(`${deployment.overwrite}/${spec.key}`, await runNoneStore(deployment, spec, noneStoreData[index]!, work)),
      ),
    ),
  );
  deletedFindings = await runDeleted(deployments.get(false)!, await writeDeleted(join(work, 'data')), work);
}, 900_000); // 3 to 5 minutes on a 2-core host, more when it is loaded (each DCMTK call has its own timeout)

afterAll(async () => {
  printSummary();
  // ISOLATION_REPORT=<path>: every finding, as JSON, for reading the whole matrix at once.
  const reportPath = process.env['ISOLATION_REPORT'];
  if (reportPath !== undefined) {
    const all: Record<string, string[]> = {};
    for (const [overwrite, deployment] of deployments) {
      for (const [key, lines] of deployment.storeReports) all[`${overwrite}/${key}/C-STORE`] = lines;
      for (const [key, lines] of deployment.reports) all[`${overwrite}/${key}`] = lines;
    }
    await writeFile(reportPath, JSON.stringify({ matrix: all, noneStores: Object.fromEntries(noneStores), deleted: deletedFindings }, null, 2));
  }
  for (const destination of destinations) destination.process?.kill();
  await stopAllOrthancs();
  if (work !== undefined) await rm(work, { recursive: true, force: true, maxRetries: 3 });
});

function cellOf(deployment: Deployment, group: Group, spec: CaseSpec, operation: Operation): string[] {
  if (operation === 'C-STORE') return deployment.storeReports.get(`${group.key}/${spec.key}`) ?? [];
  return deployment.reports.get(`${group.key}/${spec.key}/${operation}`) ?? [];
}

function printSummary() {
  const rows: string[] = ['| OverwriteInstances | case | constraint | C-STORE | C-FIND | C-MOVE | C-GET |', '|---|---|---|---|---|---|---|'];
  for (const [overwrite, deployment] of deployments) {
    for (const group of GROUPS) {
      for (const spec of casesOf(group, overwrite)) {
        const cells = OPERATIONS.map((operation) => {
          const lines = cellOf(deployment, group, spec, operation);
          if (lines.length === 0) return 'pass';
          const leaks = lines.filter((line) => line.startsWith('LEAK')).length;
          if (leaks > 0) return `LEAK (${leaks}/${lines.length})`;
          const limits = knownFindings(group, spec, operation).filter((key) => KNOWN[key].kind === 'LIMIT');
          const covered = limits.filter((key) => lines.some((line) => KNOWN[key].lines.test(line)));
          const other = lines.filter((line) => !limits.some((key) => KNOWN[key].lines.test(line))).length;
          return [covered.length > 0 ? `limit: ${covered.join(', ')} (${lines.length - other})` : '', other > 0 ? `mismatch (${other})` : '']
            .filter((part) => part !== '')
            .join(', ');
        });
        rows.push(`| ${overwrite} | ${spec.title} | ${group.constraint} | ${cells.join(' | ')} |`);
      }
    }
  }
  console.log(`${rows.join('\n')}\n(${((performance.now() - startedAt) / 1000).toFixed(1)} s)`);
}

describe('startup', () => {
  it('a tenant whose LabelsStoreLevels lacks Instance gets a warning naming it; no other tenant does', () => {
    for (const deployment of deployments.values()) {
      const warnings = deployment.orthanc.log().split('\n').filter((line) => line.includes('"LabelsStoreLevels" lacks "Instance"'));
      const index = TENANTS.indexOf(COARSE);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(
        `${tenantName(index, COARSE.aet)}: "LabelsStoreLevels" lacks "Instance", so this tenant's isolation is only as fine as the series: ` +
          'every instance of a series it labelled is visible and retrievable through it, whoever sent it',
      );
    }
  });
});

for (const overwrite of [false, true]) {
  describe(`OverwriteInstances ${overwrite}`, () => {
    it('every resource has exactly the labels of the tenants that stored into it (refused stores add none)', () => {
      expect(labelFindings.get(overwrite)).toEqual([]);
    });

    for (const spec of CASES) {
      const groups = GROUPS.filter((group) => casesOf(group, overwrite).includes(spec));
      if (groups.length === 0) continue;
      describe(spec.title, () => {
        for (const group of groups) {
          for (const operation of OPERATIONS) {
            const known = knownFindings(group, spec, operation);
            const title = `${group.constraint} (${group.viewers.map((viewer) => viewer.aet).join(', ')}): ${operation}`;
            const marker = (['LEAK', 'LIMIT'] as const)
              .map((kind) => [kind, known.filter((key) => KNOWN[key].kind === kind)] as const)
              .filter(([, keys]) => keys.length > 0)
              .map(([kind, keys]) => `KNOWN ${kind} (${keys.join(', ')}): `)
              .join('');
            it(`${marker}${title}`, () => {
              const lines = cellOf(deployments.get(overwrite)!, group, spec, operation);
              const name = `${spec.title} × ${group.constraint} × ${operation}, OverwriteInstances ${overwrite}`;
              const covers = (key: KnownKey, line: string) =>
                KNOWN[key].lines.test(line) && (KNOWN[key].kind === 'LEAK' || !line.startsWith('LEAK'));
              const unknown = lines.filter((line) => !known.some((key) => covers(key, line)));
              const facts = group.viewers.map((viewer) => declared(viewer).fact).join('; ');
              expect(unknown, `${name}: findings (expected by the facts: ${facts})`).toEqual([]);
              for (const key of known) {
                const kind = KNOWN[key].kind === 'LEAK' ? 'leak' : 'limit';
                expect(lines.some((line) => covers(key, line)), `${name}: the known ${kind} still shows (${KNOWN[key].what})`).toBe(true);
              }
            });
          }
        }
      });
    }
  });
}

describe('the stores of a None tenant: any instance Orthanc holds is foreign to it', () => {
  for (const overwrite of [false, true]) {
    for (const spec of NONE_STORES) {
      const title = `OverwriteInstances ${overwrite}: ${spec.title}`;
      it(spec.limit ? `KNOWN LIMIT (${spec.limit.slice(0, spec.limit.indexOf(':'))}): ${title}` : title, () => {
        const outcome = noneStores.get(`${overwrite}/${spec.key}`)!;
        const output = outcome.store.stderr + outcome.store.stdout;
        const why = `${spec.limit ?? title} (${spec.sender.aet}'s store: ${describeResult(outcome.store)})`;
        expect((spec.status === 'Success' ? STATUS_SUCCESS : STATUS_REFUSED).test(output), `${why}: the store is ${spec.status}`).toBe(true);
        // Never overwritten, labelled as the store says (and nothing more).
        expect(outcome.after.md5, `${why}: the instance's file`).toBe(outcome.before.md5);
        expect(outcome.after.studyDescription, `${why}: the instance's StudyDescription`).toBe(outcome.original.studyDescription);
        const labels = Object.fromEntries(
          Object.entries(outcome.before.labels).map(([level, present]) => [level, [...new Set([...present, ...(spec.added[level as Level] ?? [])])].sort()]),
        );
        expect(outcome.after.labels, `${why}: the labels`).toEqual(labels);
        // Who finds and receives it, with the content Orthanc held first.
        const own = `${outcome.original.sopInstanceUid} "${outcome.original.studyDescription}"`;
        const expected = Object.fromEntries(
          NONE_VIEWERS.map((viewer) => [viewer.aet, spec.seenBy.includes(viewer) ? { found: [own], received: [own] } : { found: [], received: [] }]),
        );
        expect(outcome.seen, `${why}: found (C-FIND IMAGE) and received (C-GET) through each tenant`).toEqual(expected);
      });
    }
  }
});

describe('beyond the matrix: another sender\'s instance deleted from a shared patient, study and series', () => {
  it('OverwriteInstances false: through B, only B\'s values show and match at every level, A\'s (deleted) values find nothing, and nothing shows through A', () => {
    expect(deletedFindings).toEqual([]);
  });
});
