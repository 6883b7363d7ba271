// C-MOVE and C-GET through a tenant (src/move.ts, native/dicom_retrieve.cpp,
// native/move_scp.cpp). The resources are matched at the query level under the tenant's
// label constraint, as C-FIND is; then exactly the tenant's entitled instances within
// them are sent, each once, with exact sub-operation counts. So a retrieve at a level
// whose resources the tenant does not label finds nothing (Success, 0 sub-operations):
// with the default LabelsStoreLevels (Study, Series, Instance), PATIENT level; with
// LabelsStoreLevels ["Study"], every level but STUDY. C-MOVE goes to the destination's
// configured AET over one association whose calling AET is the tenant's.
//
// Four Orthancs, started side by side:
// - "main": tenants TENANT_A (label a), TENANT_B (label b), TENANT_C (label c,
//   LabelsStoreLevels ["Study"]), A_LIMITED (label a, AllowedMoveDestinations
//   ["dest_ok"]) and TENANT_P (label p, LabelsStoreLevels with "Patient": it labels
//   patients too); data stored through A, B, C, P and the main port, with a study shared
//   by A, B and the main port (same StudyInstanceUID, a series each), a patient with a
//   study of A and a study of B, a study of P in that shared patient, and a patient of P
//   with a study of the main port;
// - "fragile": tenant A_FRAGILE (label a) moving to "ctonly", a plain Orthanc whose
//   AcceptedSopClasses is CT only, so that MR sub-operations fail;
// - "ctonly": that destination;
// - "async": tenant A_ASYNC (label a) with SynchronousCMove false: an Orthanc job sends
//   in the background, and the C-MOVE reports one sub-operation per entitled instance,
//   each completed at once (as Orthanc 1.12.7's own port does for a single resource).
// Move destinations are DCMTK storescp processes (with -d, their log shows each
// association's calling and called AETs and each file stored).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dicomStrings, echoscu, findscu, runTool, storescu, type DcmtkResult } from '../support/dcmtk.js';
import { orthancIds, writeInstance, type SyntheticInstance } from '../support/dataset.js';
import { freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { literal, multitenantSection, PLUGIN_PATH, tenantName } from '../support/plugin.js';

// ---------------------------------------------------------------------------------------
// Ports: distinct, outside the ephemeral range (see store.test.ts: freePort() may repeat).

// Distinct ports, outside the ephemeral range (see freePort).
const uniquePort = freePort;

// ---------------------------------------------------------------------------------------
// The data: 25 instances of 7 patients.

type Via = 'A' | 'B' | 'C' | 'P' | 'main';
type Tenant = 'A' | 'B' | 'C' | 'P';

const ROOT = '1.2.826.0.1.3680043.10.1234.91';
const study = (n: number) => `${ROOT}.${n}`;
const series = (n: number, k: number) => `${ROOT}.${n}.${k}`;

interface SeriesSpec {
  patient: string;
  study: number;
  series: number;
  modality: 'CT' | 'MR' | 'US';
  count: number;
  via: Via;
}

const SERIES: SeriesSpec[] = [
  // RT-PA: A's only (two studies, CT + MR in study 1).
  { patient: 'RT-PA', study: 1, series: 1, modality: 'CT', count: 2, via: 'A' },
  { patient: 'RT-PA', study: 1, series: 2, modality: 'MR', count: 2, via: 'A' },
  { patient: 'RT-PA', study: 2, series: 1, modality: 'US', count: 1, via: 'A' },
  // RT-PB: B's only.
  { patient: 'RT-PB', study: 3, series: 1, modality: 'CT', count: 2, via: 'B' },
  { patient: 'RT-PB', study: 3, series: 2, modality: 'MR', count: 1, via: 'B' },
  // RT-PS: study 4 shared by A, B and the main port (one series each).
  { patient: 'RT-PS', study: 4, series: 1, modality: 'CT', count: 2, via: 'A' },
  { patient: 'RT-PS', study: 4, series: 2, modality: 'MR', count: 2, via: 'B' },
  { patient: 'RT-PS', study: 4, series: 3, modality: 'CT', count: 1, via: 'main' },
  // RT-PX: a study of A and a study of B.
  { patient: 'RT-PX', study: 5, series: 1, modality: 'CT', count: 1, via: 'A' },
  { patient: 'RT-PX', study: 6, series: 1, modality: 'CT', count: 1, via: 'B' },
  // RT-PM: the main port's only.
  { patient: 'RT-PM', study: 7, series: 1, modality: 'CT', count: 2, via: 'main' },
  // RT-PC: tenant C labels studies only: the main port's series of its study is C's too.
  { patient: 'RT-PC', study: 8, series: 1, modality: 'CT', count: 2, via: 'C' },
  { patient: 'RT-PC', study: 8, series: 2, modality: 'MR', count: 1, via: 'C' },
  { patient: 'RT-PC', study: 8, series: 3, modality: 'CT', count: 1, via: 'main' },
  // Tenant P labels patients too: a study of its own in the shared patient RT-PS, and its
  // own patient RT-PP, which holds a study of the main port as well.
  { patient: 'RT-PS', study: 10, series: 1, modality: 'MR', count: 1, via: 'P' },
  { patient: 'RT-PP', study: 9, series: 1, modality: 'CT', count: 2, via: 'P' },
  { patient: 'RT-PP', study: 11, series: 1, modality: 'CT', count: 1, via: 'main' },
];

interface Instance extends SyntheticInstance {
  via: Via;
}

let directory: string;
let DATA: Instance[] = [];

async function writeData(): Promise<Instance[]> {
  const instances = await Promise.all(
    SERIES.flatMap((spec) =>
      Array.from({ length: spec.count }, async (_, i) => {
        const written = await writeInstance(join(directory, 'data'), {
          patientId: spec.patient,
          patientName: `Retrieve^${spec.patient}`,
          studyInstanceUid: study(spec.study),
          accessionNumber: `RT-ACC${spec.study}`,
          seriesInstanceUid: series(spec.study, spec.series),
          seriesNumber: String(spec.series),
          modality: spec.modality,
          sopInstanceUid: `${series(spec.study, spec.series)}.${i + 1}`,
          instanceNumber: String(i + 1),
        });
        return { ...written, via: spec.via };
      }),
    ),
  );
  return instances;
}

const uidsOf = (instances: SyntheticInstance[]) => instances.map((instance) => instance.sopInstanceUid).sort();
const via = (who: Via) => DATA.filter((instance) => instance.via === who);

type KeyField = 'patientId' | 'studyInstanceUid' | 'accessionNumber' | 'seriesInstanceUid' | 'sopInstanceUid';

type Level = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';

/** The query levels whose resources each tenant labels (its LabelsStoreLevels). */
const LABELLED_LEVELS: Record<Tenant, Level[]> = {
  A: ['STUDY', 'SERIES', 'IMAGE'], // the default LabelsStoreLevels
  B: ['STUDY', 'SERIES', 'IMAGE'],
  C: ['STUDY'],
  P: ['PATIENT', 'STUDY', 'SERIES', 'IMAGE'],
};

/**
 * Whether an instance is the tenant's: A, B and P label instances, so their own
 * instances; C labels studies only (LabelsStoreLevels ["Study"]), so every instance of a
 * study it stored into.
 */
function isEntitled(tenant: Tenant, instance: Instance): boolean {
  if (tenant !== 'C') return instance.via === tenant;
  return DATA.some((other) => other.via === 'C' && other.studyInstanceUid === instance.studyInstanceUid);
}

/** The tenant's instances within the resources whose `field` is one of `values`. */
function entitled(tenant: Tenant, field: KeyField, values: string[]): string[] {
  return uidsOf(DATA.filter((instance) => isEntitled(tenant, instance) && values.includes(instance[field])));
}

/**
 * What a retrieve through the tenant at `level` sends: the resources are matched at the
 * query level under the tenant's label constraint, so nothing at a level it does not
 * label; else its entitled instances within them (the resources of that level it
 * labelled are exactly those holding its entitled instances).
 */
function retrievable(tenant: Tenant, level: Level, field: KeyField, values: string[]): string[] {
  return LABELLED_LEVELS[tenant].includes(level) ? entitled(tenant, field, values) : [];
}

// ---------------------------------------------------------------------------------------
// DCMTK's answers: the C-MOVE-RSP / C-GET-RSP messages as movescu -d / getscu -d dump them.

interface Response {
  status: number;
  /** undefined: the element is absent ("none"). */
  remaining: number | undefined;
  completed: number | undefined;
  failed: number | undefined;
  warning: number | undefined;
}

interface RetrieveResult {
  kind: 'C-MOVE' | 'C-GET';
  result: DcmtkResult;
  output: string;
  responses: Response[];
  pending: Response[];
  /** undefined: no response at all (e.g. the association was aborted). */
  final: Response | undefined;
  /** The final response's Failed SOP Instance UID List, if it has one. */
  failedUids: string[] | undefined;
}

function parseResponses(output: string, messageType: 'C-MOVE RSP' | 'C-GET RSP'): Response[] {
  const blocks = output.split('INCOMING DIMSE MESSAGE').slice(1).map((block) => block.split('END DIMSE MESSAGE')[0]!);
  const field = (block: string, name: string) => block.match(new RegExp(`^D: ${name} +: (.*)$`, 'm'))?.[1]?.trim();
  const count = (block: string, name: string) => {
    const value = field(block, name);
    return value === undefined || value === 'none' ? undefined : Number(value);
  };
  return blocks
    .filter((block) => field(block, 'Message Type') === messageType)
    .map((block) => ({
      status: Number.parseInt(field(block, 'DIMSE Status')!.slice(2, 6), 16),
      remaining: count(block, 'Remaining Suboperations'),
      completed: count(block, 'Completed Suboperations'),
      failed: count(block, 'Failed Suboperations'),
      warning: count(block, 'Warning Suboperations'),
    }));
}

function describeRun(run: { result: DcmtkResult }): string {
  const text = run.result.stdout + run.result.stderr;
  // Without the hex dumps of the PDUs.
  return `exit code ${run.result.code}:\n${text
    .split('\n')
    .filter((line) => !/^D: +([0-9a-f]{2} +)+[0-9a-f]{2}$/.test(line))
    .join('\n')}`;
}

function toRetrieveResult(result: DcmtkResult, messageType: 'C-MOVE RSP' | 'C-GET RSP'): RetrieveResult {
  const output = result.stdout + result.stderr;
  const responses = parseResponses(output, messageType);
  const final = responses.at(-1);
  const identifiers = output.split('Response Identifiers:')[1];
  const list = identifiers?.match(/\(0008,0058\) UI \[([^\]]*)\]/)?.[1];
  return {
    kind: messageType === 'C-MOVE RSP' ? 'C-MOVE' : 'C-GET',
    result,
    output,
    responses,
    pending: responses.slice(0, -1),
    final,
    failedUids: list === undefined ? undefined : list.split('\\').sort(),
  };
}

interface RetrieveOptions {
  port: number;
  calledAet: string;
  callingAet?: string;
  model: 'S' | 'P';
  /** -k arguments, e.g. "QueryRetrieveLevel=STUDY". */
  keys: string[];
}

const SCU_AET = 'RETRIEVE_SCU';

function keyArgs(options: RetrieveOptions): string[] {
  return [`-${options.model}`, ...options.keys.flatMap((key) => ['-k', key])];
}

async function movescu(options: RetrieveOptions & { destination: string }): Promise<RetrieveResult> {
  const result = await runTool(
    'movescu',
    ['-d', '-aet', options.callingAet ?? SCU_AET, '-aec', options.calledAet, '-aem', options.destination,
      ...keyArgs(options), '127.0.0.1', String(options.port)],
    60_000,
  );
  return toRetrieveResult(result, 'C-MOVE RSP');
}

interface GetResult extends RetrieveResult {
  /** SOP Instance UIDs of the files received over the C-GET association. */
  received: string[];
  /** The number of C-STORE requests received (duplicates included). */
  stores: number;
  associations: number;
}

async function getscu(options: RetrieveOptions): Promise<GetResult> {
  const output = await mkdtemp(join(directory, 'get-'));
  try {
    const result = await runTool(
      'getscu',
      ['-d', '-aet', options.callingAet ?? SCU_AET, '-aec', options.calledAet, '-od', output,
        ...keyArgs(options), '127.0.0.1', String(options.port)],
      60_000,
    );
    const text = result.stdout + result.stderr;
    const received = (await readdir(output)).map((name) => name.slice(name.indexOf('.') + 1)).sort();
    return {
      ...toRetrieveResult(result, 'C-GET RSP'),
      received,
      stores: (text.match(/^I: Received C-STORE Request/gm) ?? []).length,
      associations: (text.match(/^I: Association Accepted/gm) ?? []).length,
    };
  } finally {
    await rm(output, { recursive: true, force: true });
  }
}

/** A pending or final response's counts, as a compact object for readable diffs. */
const countsOf = (response: Response | undefined) =>
  response === undefined
    ? 'no response'
    : {
        status: hex(response.status),
        remaining: response.remaining ?? 0,
        completed: response.completed,
        failed: response.failed,
        warning: response.warning,
      };

const hex = (status: number) => `0x${status.toString(16).padStart(4, '0')}`;

/** The final status, or -1 without any response. */
const finalStatus = (run: RetrieveResult) => run.final?.status ?? -1;

/** The final status is a failure or refusal (0xA..., 0xC...) and the only response. */
function expectFailure(run: RetrieveResult) {
  expect(run.responses, describeRun(run)).toHaveLength(1);
  expect([0xa000, 0xc000], describeRun(run)).toContain(finalStatus(run) & 0xf000);
}

/** Pending responses count the sub-operations as they go: each one more, none skipped. */
function expectCountingPending(run: RetrieveResult, total: number) {
  const done = run.pending.map((response) => (response.completed ?? 0) + (response.failed ?? 0) + (response.warning ?? 0));
  for (const response of run.pending) {
    expect(response.status, describeRun(run)).toBe(0xff00);
    expect(response.remaining, describeRun(run)).toBe(total - ((response.completed ?? 0) + (response.failed ?? 0) + (response.warning ?? 0)));
  }
  // C-MOVE: one pending response per sub-operation but the last (whose response is the
  // final one); C-GET (the framework's SCP): one per sub-operation.
  expect(run.pending.length, describeRun(run)).toBe(run.kind === 'C-MOVE' ? Math.max(total - 1, 0) : total);
  expect(done, describeRun(run)).toEqual(Array.from({ length: run.pending.length }, (_, i) => i + 1));
}

/** A successful retrieve of `expected` instances: exact final and pending counts. */
function expectSuccess(run: RetrieveResult, expectedCount: number) {
  expect(countsOf(run.final), describeRun(run)).toEqual({
    status: '0x0000',
    remaining: 0,
    completed: expectedCount,
    failed: 0,
    warning: 0,
  });
  expectCountingPending(run, expectedCount);
  expect(run.failedUids, describeRun(run)).toBeUndefined();
}

// ---------------------------------------------------------------------------------------
// Move destinations: storescp processes, registered as modalities through the REST API.

interface AssociationSeen {
  calling: string;
  called: string;
}

interface Received {
  uids: string[];
  /** "storing DICOM file" lines: duplicates included. */
  stores: number;
  associations: AssociationSeen[];
}

class Destination {
  private text = '';
  private mark = 0;

  private constructor(
    readonly name: string,
    readonly aet: string,
    readonly port: number,
    private readonly child: ChildProcess,
  ) {
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (this.text += chunk));
    }
  }

  static async start(name: string, aet: string): Promise<Destination> {
    const port = await uniquePort();
    const output = join(directory, `destination-${name}`);
    await mkdir(output, { recursive: true });
    const child = spawn('storescp', ['-d', '-aet', aet, '-od', output, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    destinations.push(child);
    const destination = new Destination(name, aet, port, child);
    for (let attempt = 0; ; attempt++) {
      if ((await echoscu({ port, calledAet: aet, callingAet: 'PROBE', timeoutMs: 5_000 })).ok) break;
      if (attempt > 100) throw new Error(`storescp ${aet} did not start:\n${destination.text}`);
      await sleep(50);
    }
    await destination.settled();
    destination.reset();
    return destination;
  }

  /** Registers this destination as the modality `name` of these Orthancs. */
  async register(...orthancs: RunningOrthanc[]) {
    for (const orthanc of orthancs) {
      const response = await orthanc.rest('PUT', `/modalities/${this.name}`, { AET: this.aet, Host: '127.0.0.1', Port: this.port });
      expect(response.status).toBe(200);
    }
  }

  /** Forgets what was received so far. */
  reset() {
    this.mark = this.text.length;
  }

  private since() {
    return this.text.slice(this.mark);
  }

  /** Every association received since the mark is over (released or aborted). */
  private async settled(timeoutMs = 5_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.since();
      const opened = (text.match(/^I: Association Received/gm) ?? []).length;
      const closed = (text.match(/^I: (Association Release|Association Aborted|Peer aborted Association)/gm) ?? []).length;
      if (opened === closed || Date.now() > deadline) return;
      await sleep(20);
    }
  }

  /** What arrived since the mark; waits until `atLeast` stores are there (Orthanc jobs) and the associations are over. */
  async received(atLeast = 0, timeoutMs = 10_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    while (this.stored().length < atLeast && Date.now() < deadline) await sleep(50);
    await this.settled();
    const stored = this.stored();
    const text = this.since();
    const associations = text
      .split(/^I: Association Received/m)
      .slice(1)
      .map((block) => ({
        calling: block.match(/^D: Calling Application Name: +(\S*)/m)?.[1] ?? '?',
        called: block.match(/^D: Called Application Name: +(\S*)/m)?.[1] ?? '?',
      }));
    return { uids: [...stored].sort(), stores: stored.length, associations };
  }

  private stored(): string[] {
    return [...this.since().matchAll(/^I: storing DICOM file: (.*)$/gm)].map((match) => {
      const name = match[1]!.split('/').at(-1)!;
      return name.slice(name.indexOf('.') + 1);
    });
  }

  describe(): string {
    return `storescp ${this.aet}:\n${this.since().split('\n').filter((line) => !/^D: +([0-9a-f]{2} +)+[0-9a-f]{2}$/.test(line)).join('\n')}`;
  }
}

const destinations: ChildProcess[] = [];
process.once('exit', () => {
  for (const child of destinations) child.kill('SIGKILL');
});

// ---------------------------------------------------------------------------------------
// The Orthancs.

interface TenantPort {
  aet: string;
  port: number;
}

let main: RunningOrthanc;
let fragile: RunningOrthanc;
let ctonly: RunningOrthanc;
let asyncOrthanc: RunningOrthanc;

let A: TenantPort;
let B: TenantPort;
let C: TenantPort;
let LIMITED: TenantPort;
let P: TenantPort;
let FRAGILE: TenantPort;
let ASYNC: TenantPort;
const TENANT: Record<Tenant, () => TenantPort> = { A: () => A, B: () => B, C: () => C, P: () => P };

let DEST: Destination;
let DEST_OK: Destination;
let DEST_NO: Destination;
let DEST_ASYNC: Destination;
let PARALLEL: Destination[];

const CALLERS = {
  scu: { AET: SCU_AET, Host: '127.0.0.1', Port: 104 },
  noget: { AET: 'NOGET', Host: '127.0.0.1', Port: 104, AllowGet: false },
};

const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';

async function storeThrough(orthanc: RunningOrthanc, tenant: TenantPort | undefined, instances: Instance[]) {
  if (instances.length === 0) return;
  const result = await storescu({
    port: tenant?.port ?? orthanc.dicomPort,
    calledAet: tenant?.aet ?? 'ORTHANC',
    callingAet: SCU_AET,
    files: instances.map((instance) => instance.path),
    timeoutMs: 60_000,
  });
  expect(result.ok, `storescu: ${result.stdout}${result.stderr}`).toBe(true);
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'retrieve-test-'));
  const data = writeData();
  data.catch(() => {});

  A = { aet: 'TENANT_A', port: await uniquePort() };
  B = { aet: 'TENANT_B', port: await uniquePort() };
  C = { aet: 'TENANT_C', port: await uniquePort() };
  LIMITED = { aet: 'A_LIMITED', port: await uniquePort() };
  P = { aet: 'TENANT_P', port: await uniquePort() };
  FRAGILE = { aet: 'A_FRAGILE', port: await uniquePort() };
  ASYNC = { aet: 'A_ASYNC', port: await uniquePort() };

  const withPlugin = async (tenants: { tenant: TenantPort; fields: Record<string, unknown> }[], configuration: Record<string, unknown>) =>
    startOrthanc({
      configuration: {
        HttpPort: await uniquePort(),
        DicomPort: await uniquePort(),
        DicomModalities: CALLERS,
        DicomAlwaysAllowGet: false,
        DicomAlwaysAllowMove: false,
        DicomThreadsCount: 8,
        ...multitenantSection(
          ...tenants.map(({ tenant, fields }) => ({ AET: tenant.aet, Port: tenant.port, Labels: ['a'], ...fields })),
        ),
        ...configuration,
      },
      plugins: [PLUGIN_PATH],
      waitForPorts: tenants.map(({ tenant }) => tenant.port),
    });

  [main, fragile, ctonly, asyncOrthanc] = await Promise.all([
    withPlugin(
      [
        { tenant: A, fields: { Labels: ['a'] } },
        { tenant: B, fields: { Labels: ['b'] } },
        { tenant: C, fields: { Labels: ['c'], LabelsStoreLevels: ['Study'] } },
        { tenant: LIMITED, fields: { Labels: ['a'], AllowedMoveDestinations: ['dest_ok'] } },
        { tenant: P, fields: { Labels: ['p'], LabelsStoreLevels: ['Patient', 'Study', 'Series', 'Instance'] } },
      ],
      {},
    ),
    withPlugin([{ tenant: FRAGILE, fields: {} }], {}),
    (async () =>
      startOrthanc({
        configuration: {
          HttpPort: await uniquePort(),
          DicomPort: await uniquePort(),
          DicomAet: 'CT_ONLY',
          AcceptedSopClasses: [CT_IMAGE_STORAGE],
        },
      }))(),
    withPlugin([{ tenant: ASYNC, fields: {} }], { SynchronousCMove: false }),
  ]);

  [DEST, DEST_OK, DEST_NO, DEST_ASYNC, ...PARALLEL] = await Promise.all([
    Destination.start('dest', 'DEST'),
    Destination.start('dest_ok', 'DEST_OK'),
    Destination.start('dest_no', 'DEST_NO'),
    Destination.start('dest_async', 'DEST_ASYNC'),
    ...[1, 2, 3].map((n) => Destination.start(`parallel${n}`, `PARALLEL${n}`)),
  ]);
  await DEST.register(main, fragile, asyncOrthanc);
  await DEST_OK.register(main);
  await DEST_NO.register(main);
  await DEST_ASYNC.register(asyncOrthanc);
  // A destination nobody listens on (SynchronousCMove false: the job fails, the C-MOVE does not).
  const downModality = await asyncOrthanc.rest('PUT', '/modalities/dest_down', { AET: 'DEST_DOWN', Host: '127.0.0.1', Port: await uniquePort() });
  expect(downModality.status).toBe(200);
  for (const destination of PARALLEL) await destination.register(main);
  const ctonlyModality = await fragile.rest('PUT', '/modalities/ctonly', { AET: 'CT_ONLY', Host: '127.0.0.1', Port: ctonly.dicomPort });
  expect(ctonlyModality.status).toBe(200);

  DATA = await data;
  await Promise.all([
    (async () => {
      // Tenant A first: the shared study exists when B and the main port add their series.
      await storeThrough(main, A, via('A'));
      await storeThrough(main, B, via('B'));
      await storeThrough(main, C, via('C'));
      await storeThrough(main, P, via('P'));
      await storeThrough(main, undefined, via('main'));
    })(),
    (async () => {
      await storeThrough(fragile, FRAGILE, via('A'));
      await storeThrough(fragile, undefined, via('main'));
    })(),
    (async () => {
      await storeThrough(asyncOrthanc, ASYNC, via('A'));
      await storeThrough(asyncOrthanc, undefined, via('main'));
    })(),
  ]);
}, 120_000);

afterAll(async () => {
  for (const child of destinations) child.kill('SIGKILL');
  await stopAllOrthancs();
  if (directory !== undefined) await rm(directory, { recursive: true, force: true });
});

/** Orthanc is alive: its REST API answers and the tenant still answers C-ECHO. */
async function expectAlive(orthanc: RunningOrthanc, tenant: TenantPort) {
  const system = await orthanc.rest('GET', '/system').catch((error: Error) => error);
  if (system instanceof Error) {
    const exit = await Promise.race([orthanc.exited, sleep(2_000, 'still running')]);
    throw new Error(`Orthanc does not answer (${system.message}), exit: ${JSON.stringify(exit)}; its log ends with:\n${orthanc.log().slice(-2_000)}`);
  }
  expect(system.status).toBe(200);
  const echo = await echoscu({ port: tenant.port, calledAet: tenant.aet, callingAet: SCU_AET });
  expect(echo.ok, `echoscu: ${echo.stdout}${echo.stderr}`).toBe(true);
}

// ---------------------------------------------------------------------------------------

describe('the data', () => {
  it('is stored: 25 instances, labelled as each tenant\'s LabelsStoreLevels say', async () => {
    expect(DATA).toHaveLength(25);
    const instances = await main.rest<{ Labels: string[]; MainDicomTags: { SOPInstanceUID: string } }[]>('GET', '/instances?expand');
    expect(Object.fromEntries(instances.body.map((instance) => [instance.MainDicomTags.SOPInstanceUID, instance.Labels.join(',')]))).toEqual(
      Object.fromEntries(DATA.map((instance) => [instance.sopInstanceUid, { A: 'a', B: 'b', C: '', P: 'p', main: '' }[instance.via]])),
    );
    // Patients carry P's label only (the others' LabelsStoreLevels lack "Patient"): RT-PS
    // (A's, B's, the main port's and P's) and RT-PP (P's and the main port's). The patients
    // whose studies, series or instances carry different labels also get the plugin's mark
    // of patients of several senders (src/mixing.ts), moments after the stores: RT-PS,
    // RT-PX (A's and B's) and RT-PP (P's study carries "p" at every level, the main port's
    // none).
    const patientLabels = async () =>
      Object.fromEntries(
        (await main.rest<{ Labels: string[]; MainDicomTags: { PatientID: string } }[]>('GET', '/patients?expand')).body.map((patient) => [
          patient.MainDicomTags.PatientID,
          [...patient.Labels].sort().join(','),
        ]),
      );
    const expected = {
      'RT-PA': '',
      'RT-PB': '',
      'RT-PS': 'multitenant-mixed,p',
      'RT-PX': 'multitenant-mixed',
      'RT-PM': '',
      'RT-PC': '',
      'RT-PP': 'multitenant-mixed,p',
    };
    let labels = await patientLabels();
    for (const started = Date.now(); Date.now() - started < 30_000 && !Object.entries(expected).every(([id, value]) => labels[id] === value); labels = await patientLabels()) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(labels).toEqual(expected);
    // The shared study carries A's and B's labels; C's study carries C's.
    const studyLabels = async (instance: Instance) =>
      (await main.rest<{ Labels: string[] }>('GET', `/studies/${orthancIds(instance).study}`)).body.Labels.sort();
    expect(await studyLabels(DATA.find((instance) => instance.studyInstanceUid === study(4))!)).toEqual(['a', 'b']);
    expect(await studyLabels(DATA.find((instance) => instance.studyInstanceUid === study(8))!)).toEqual(['c']);
  });
});

// ---------------------------------------------------------------------------------------

interface LevelCase {
  name: string;
  model: 'S' | 'P';
  level: Level;
  key: string;
  field: KeyField;
  values: () => string[];
}

const sopUids = (...picks: [number, number, number][]) => picks.map(([n, k, i]) => `${series(n, k)}.${i}`);

const LEVEL_CASES: LevelCase[] = [
  {
    name: 'PATIENT level, Patient root: patients of A, of B, shared, of the main port, of P, unknown',
    model: 'P',
    level: 'PATIENT',
    key: 'PatientID',
    field: 'patientId',
    values: () => ['RT-PA', 'RT-PB', 'RT-PS', 'RT-PX', 'RT-PM', 'RT-PP', 'RT-NOBODY'],
  },
  {
    name: 'STUDY level, Study root: studies of A, of B, shared, of the main port',
    model: 'S',
    level: 'STUDY',
    key: 'StudyInstanceUID',
    field: 'studyInstanceUid',
    values: () => [study(1), study(3), study(4), study(6), study(7)],
  },
  {
    name: 'STUDY level, Patient root',
    model: 'P',
    level: 'STUDY',
    key: 'StudyInstanceUID',
    field: 'studyInstanceUid',
    values: () => [study(2), study(4), study(5), study(7), `${ROOT}.999`],
  },
  {
    name: 'STUDY level by AccessionNumber (as Orthanc\'s core, before StudyInstanceUID)',
    model: 'S',
    level: 'STUDY',
    key: 'AccessionNumber',
    field: 'accessionNumber',
    values: () => ['RT-ACC2', 'RT-ACC4', 'RT-ACC7'],
  },
  {
    name: 'SERIES level, Study root: series of A, of B and of the main port in the shared study, and others',
    model: 'S',
    level: 'SERIES',
    key: 'SeriesInstanceUID',
    field: 'seriesInstanceUid',
    values: () => [series(1, 1), series(3, 2), series(4, 1), series(4, 2), series(4, 3), series(7, 1)],
  },
  {
    name: 'SERIES level, Patient root',
    model: 'P',
    level: 'SERIES',
    key: 'SeriesInstanceUID',
    field: 'seriesInstanceUid',
    values: () => [series(1, 2), series(2, 1), series(3, 1), series(4, 2), series(6, 1)],
  },
  {
    name: 'IMAGE level, Study root: instances of A, of B and of the main port',
    model: 'S',
    level: 'IMAGE',
    key: 'SOPInstanceUID',
    field: 'sopInstanceUid',
    values: () => sopUids([1, 1, 2], [1, 2, 1], [4, 1, 1], [4, 2, 2], [4, 3, 1], [3, 1, 1], [7, 1, 2], [6, 1, 1]),
  },
  {
    name: 'IMAGE level, Patient root',
    model: 'P',
    level: 'IMAGE',
    key: 'SOPInstanceUID',
    field: 'sopInstanceUid',
    values: () => sopUids([2, 1, 1], [5, 1, 1], [4, 2, 1], [3, 2, 1], [7, 1, 1]),
  },
];

// Tenant C (LabelsStoreLevels ["Study"]): only its studies carry its label, so a
// retrieve finds something at STUDY level only; above it and below it, nothing.
const STUDY_TENANT_CASES: LevelCase[] = [
  { name: 'PATIENT level', model: 'P', level: 'PATIENT', key: 'PatientID', field: 'patientId', values: () => ['RT-PC', 'RT-PA'] },
  { name: 'STUDY level', model: 'S', level: 'STUDY', key: 'StudyInstanceUID', field: 'studyInstanceUid', values: () => [study(8), study(1)] },
  {
    name: 'SERIES level (C\'s series and the main port\'s series of C\'s study)',
    model: 'S',
    level: 'SERIES',
    key: 'SeriesInstanceUID',
    field: 'seriesInstanceUid',
    values: () => [series(8, 1), series(8, 3), series(1, 1)],
  },
  { name: 'IMAGE level', model: 'S', level: 'IMAGE', key: 'SOPInstanceUID', field: 'sopInstanceUid', values: () => sopUids([8, 1, 2], [8, 3, 1], [1, 1, 1]) },
].map((levelCase) => ({ ...levelCase, name: `LabelsStoreLevels ["Study"], ${levelCase.name}` }) as LevelCase);

// Tenant P (LabelsStoreLevels with "Patient"): the very PATIENT-level retrieve that finds
// nothing through A and B sends P's entitled instances (and not the main port's study of
// P's patient).
const PATIENT_TENANT_CASES: LevelCase[] = [
  LEVEL_CASES[0]!,
  {
    name: 'STUDY level, Study root: P\'s studies, the main port\'s study of P\'s patient, the shared study',
    model: 'S',
    level: 'STUDY',
    key: 'StudyInstanceUID',
    field: 'studyInstanceUid',
    values: () => [study(9), study(10), study(11), study(4)],
  },
].map((levelCase) => ({ ...levelCase, name: `LabelsStoreLevels with "Patient", ${levelCase.name}` }) as LevelCase);

const CASES = [
  ...LEVEL_CASES.flatMap((levelCase) => (['A', 'B'] as const).map((tenant) => ({ ...levelCase, tenant: tenant as Tenant }))),
  ...STUDY_TENANT_CASES.map((levelCase) => ({ ...levelCase, tenant: 'C' as Tenant })),
  ...PATIENT_TENANT_CASES.map((levelCase) => ({ ...levelCase, tenant: 'P' as Tenant })),
];

type TenantCase = (typeof CASES)[number];

const keysOf = (levelCase: LevelCase) => [`QueryRetrieveLevel=${levelCase.level}`, `${levelCase.key}=${levelCase.values().join('\\')}`];

/**
 * What the case sends (none at a level the tenant does not label). Every case names
 * resources that hold entitled instances of the tenant: a case that sends nothing does so
 * because of its level, not for want of data.
 */
function expectedOf(levelCase: TenantCase): string[] {
  const within = entitled(levelCase.tenant, levelCase.field, levelCase.values());
  expect(within.length, 'the named resources hold entitled instances of the tenant').toBeGreaterThan(0);
  return retrievable(levelCase.tenant, levelCase.level, levelCase.field, levelCase.values());
}

describe('the cases', () => {
  it('send nothing at a level the tenant does not label (PATIENT with the default LabelsStoreLevels; all but STUDY with ["Study"]), else something', () => {
    const nothing = CASES.filter((levelCase) => expectedOf(levelCase).length === 0).map((levelCase) => `${levelCase.tenant} ${levelCase.level}`);
    expect(nothing).toEqual(['A PATIENT', 'B PATIENT', 'C PATIENT', 'C SERIES', 'C IMAGE']);
  });
});

describe('C-MOVE at every level sends exactly the tenant\'s entitled instances within the resources it labels at that level', () => {
  it.each(CASES)('tenant $tenant, $name', async (levelCase) => {
    const tenant = TENANT[levelCase.tenant]();
    const expected = expectedOf(levelCase);
    DEST.reset();
    const run = await movescu({ port: tenant.port, calledAet: tenant.aet, destination: DEST.aet, model: levelCase.model, keys: keysOf(levelCase) });
    const received = await DEST.received(expected.length, 2_000);
    expect(received.uids, `${describeRun(run)}\n${DEST.describe()}`).toEqual(expected);
    expect(received.stores, 'no duplicates').toBe(expected.length);
    // Nothing to send: Success with zero sub-operations.
    expectSuccess(run, expected.length);
    // One association for the whole move, from the tenant's AET to the destination's; none for nothing.
    expect(received.associations).toEqual(expected.length === 0 ? [] : [{ calling: tenant.aet, called: DEST.aet }]);
  });
});

describe('C-GET at every level sends exactly the tenant\'s entitled instances within the resources it labels at that level, over the requesting association', () => {
  it.each(CASES)('tenant $tenant, $name', async (levelCase) => {
    const tenant = TENANT[levelCase.tenant]();
    const expected = expectedOf(levelCase);
    DEST.reset();
    const run = await getscu({ port: tenant.port, calledAet: tenant.aet, model: levelCase.model, keys: keysOf(levelCase) });
    expect(run.received, describeRun(run)).toEqual(expected);
    expect(run.stores, 'no duplicates').toBe(expected.length);
    expect(run.associations).toBe(1);
    expectSuccess(run, expected.length);
    // Nothing goes anywhere else.
    expect((await DEST.received()).stores).toBe(0);
  });
});

describe('a retrieve matches the resources that C-FIND answers at the same level through the tenant', () => {
  const ANSWER_TAG: Record<string, string> = {
    PatientID: '0010,0020',
    StudyInstanceUID: '0020,000D',
    AccessionNumber: '0008,0050',
    SeriesInstanceUID: '0020,000E',
    SOPInstanceUID: '0008,0018',
  };

  it.each(CASES)('tenant $tenant, $name', async (levelCase) => {
    const tenant = TENANT[levelCase.tenant]();
    const expected = expectedOf(levelCase);
    const find = await findscu({
      port: tenant.port,
      calledAet: tenant.aet,
      callingAet: SCU_AET,
      level: levelCase.level,
      model: levelCase.model === 'P' ? 'patient' : 'study',
      keys: [`${levelCase.key}=${levelCase.values().join('\\')}`],
    });
    expect(find.ok, `findscu: ${find.stdout}${find.stderr}`).toBe(true);
    const answered = find.answers.flatMap((answer) => dicomStrings(answer, ANSWER_TAG[levelCase.key]!)).sort();
    // The resources holding what the retrieve sends: none at a level the tenant does not label.
    const holding = [...new Set(DATA.filter((instance) => expected.includes(instance.sopInstanceUid)).map((instance) => instance[levelCase.field]))].sort();
    expect(answered).toEqual(holding);
  });
});

// ---------------------------------------------------------------------------------------

describe('a retrieve that matches nothing the tenant may see', () => {
  // Another tenant's study and series, the main port's, and UIDs Orthanc does not have.
  const keys = [`QueryRetrieveLevel=SERIES`, `SeriesInstanceUID=${[series(3, 1), series(4, 2), series(7, 1), `${ROOT}.888.1`].join('\\')}`];

  it('C-MOVE: final Success with zero sub-operations, no pending response, nothing sent', async () => {
    DEST.reset();
    const run = await movescu({ port: A.port, calledAet: A.aet, destination: DEST.aet, model: 'S', keys });
    expect(run.responses.map(countsOf), describeRun(run)).toEqual([
      { status: '0x0000', remaining: 0, completed: 0, failed: 0, warning: 0 },
    ]);
    const received = await DEST.received();
    expect(received.stores).toBe(0);
    expect(received.associations).toEqual([]);
  });

  it('C-GET: final Success with zero sub-operations, nothing sent', async () => {
    const run = await getscu({ port: A.port, calledAet: A.aet, model: 'S', keys });
    expect(run.responses.map(countsOf), describeRun(run)).toEqual([
      { status: '0x0000', remaining: 0, completed: 0, failed: 0, warning: 0 },
    ]);
    expect(run.received).toEqual([]);
  });
});

describe('move destinations', () => {
  const studyKeys = () => [`QueryRetrieveLevel=STUDY`, `StudyInstanceUID=${study(1)}\\${study(4)}`];

  it('an unknown destination: 0xA801 (Move Destination Unknown) and nothing else', async () => {
    const ours = await movescu({ port: A.port, calledAet: A.aet, destination: 'NOWHERE', model: 'S', keys: studyKeys() });
    expect(ours.responses.map(countsOf), describeRun(ours)).toEqual([
      { status: '0xa801', remaining: 0, completed: 0, failed: 0, warning: 0 },
    ]);
    // The main port (Orthanc 1.12.7) refuses too, less precisely: 0xC000 (Unable to process).
    const theirs = await movescu({ port: main.dicomPort, calledAet: 'ORTHANC', destination: 'NOWHERE', model: 'S', keys: studyKeys() });
    expectFailure(theirs);
  });

  it('AllowedMoveDestinations: a destination not listed is refused with 0x0124 (Not Authorized), nothing sent', async () => {
    DEST_NO.reset();
    const run = await movescu({ port: LIMITED.port, calledAet: LIMITED.aet, destination: DEST_NO.aet, model: 'S', keys: studyKeys() });
    expect(run.responses.map(countsOf), describeRun(run)).toEqual([
      { status: '0x0124', remaining: 0, completed: 0, failed: 0, warning: 0 },
    ]);
    const received = await DEST_NO.received();
    expect(received.stores).toBe(0);
    expect(received.associations).toEqual([]);
  });

  it('AllowedMoveDestinations: a listed destination gets the move, over one association from the tenant\'s AET to the destination\'s configured AET', async () => {
    const expected = entitled('A', 'studyInstanceUid', [study(1), study(4)]);
    // CT and MR instances: several SOP classes, still one association.
    expect(new Set(DATA.filter((instance) => expected.includes(instance.sopInstanceUid)).map((instance) => instance.sopClassUid)).size).toBeGreaterThan(1);
    DEST_OK.reset();
    // Named in lower case (StrictAetComparison is false): the modality's own AET is called.
    const run = await movescu({ port: LIMITED.port, calledAet: LIMITED.aet, destination: 'dest_ok', model: 'S', keys: studyKeys() });
    const received = await DEST_OK.received(expected.length, 2_000);
    expect(received.uids, describeRun(run)).toEqual(expected);
    expect(received.stores).toBe(expected.length);
    expectSuccess(run, expected.length);
    expect(received.associations).toEqual([{ calling: LIMITED.aet, called: 'DEST_OK' }]);
  });
});

// ---------------------------------------------------------------------------------------

describe('a destination that refuses some instances (an Orthanc accepting CT only)', () => {
  const ofSeries = (n: number, k: number) => uidsOf(DATA.filter((instance) => instance.via === 'A' && instance.seriesInstanceUid === series(n, k)));

  // Study 1 of A: 2 CT (accepted), 2 MR (no presentation context at the destination).
  it('the failed count and the Failed SOP Instance UID List are exact, final status 0xB000; Orthanc lives', async () => {
    const keys = [`QueryRetrieveLevel=STUDY`, `StudyInstanceUID=${study(1)}`];
    const run = await movescu({ port: FRAGILE.port, calledAet: FRAGILE.aet, destination: 'CT_ONLY', model: 'S', keys });
    expect(countsOf(run.final), describeRun(run)).toEqual({ status: '0xb000', remaining: 0, completed: 2, failed: 2, warning: 0 });
    expectCountingPending(run, 4);
    expect(run.failedUids, describeRun(run)).toEqual(ofSeries(1, 2));
    await expectAlive(fragile, FRAGILE);
    const stored = await ctonly.rest<{ MainDicomTags: { SOPInstanceUID: string } }[]>('GET', '/instances?expand');
    expect(stored.body.map((instance) => instance.MainDicomTags.SOPInstanceUID).sort()).toEqual(ofSeries(1, 1));
  });

  it('every sub-operation failed: final status 0xA702, all of them in the Failed SOP Instance UID List; Orthanc lives', async () => {
    const keys = [`QueryRetrieveLevel=SERIES`, `SeriesInstanceUID=${series(1, 2)}`];
    const run = await movescu({ port: FRAGILE.port, calledAet: FRAGILE.aet, destination: 'CT_ONLY', model: 'S', keys });
    expect(countsOf(run.final), describeRun(run)).toEqual({ status: '0xa702', remaining: 0, completed: 0, failed: 2, warning: 0 });
    expectCountingPending(run, 2);
    expect(run.failedUids, describeRun(run)).toEqual(ofSeries(1, 2));
    await expectAlive(fragile, FRAGILE);
  });
});

// ---------------------------------------------------------------------------------------

describe('SynchronousCMove false', () => {
  interface Job {
    ID: string;
    Type: string;
    State: string;
    Content: { LocalAet?: string; RemoteAet?: string };
  }

  const jobsOf = async () => (await asyncOrthanc.rest<Job[]>('GET', '/jobs?expand')).body;

  /** The jobs submitted since `before` (job IDs), once they are over. */
  async function finishedJobsSince(before: string[], timeoutMs = 10_000): Promise<Job[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const jobs = (await jobsOf()).filter((job) => !before.includes(job.ID));
      if (jobs.every((job) => job.State === 'Success' || job.State === 'Failure') || Date.now() > deadline) return jobs;
      await sleep(50);
    }
  }

  const summary = (job: Job) => ({ type: job.Type, local: job.Content.LocalAet, remote: job.Content.RemoteAet });

  it('the C-MOVE reports one sub-operation per entitled instance, each completed at once; an Orthanc job sends them from the tenant\'s AET', async () => {
    const keys = [`QueryRetrieveLevel=STUDY`, `StudyInstanceUID=${study(1)}\\${study(4)}`];
    const expected = entitled('A', 'studyInstanceUid', [study(1), study(4)]);
    expect(expected).toHaveLength(6);
    const before = (await jobsOf()).map((job) => job.ID);
    DEST_ASYNC.reset();
    const run = await movescu({ port: ASYNC.port, calledAet: ASYNC.aet, destination: DEST_ASYNC.aet, model: 'S', keys });
    // Pending responses counting 1 to 5 completed, then the final Success with 6.
    expectSuccess(run, expected.length);
    const received = await DEST_ASYNC.received(expected.length);
    expect(received.uids, DEST_ASYNC.describe()).toEqual(expected);
    expect(received.stores).toBe(expected.length);
    expect(received.associations.length).toBeGreaterThan(0);
    for (const association of received.associations) expect(association).toEqual({ calling: ASYNC.aet, called: DEST_ASYNC.aet });
    const jobs = await finishedJobsSince(before);
    expect(jobs.map((job) => ({ ...summary(job), state: job.State }))).toEqual([
      { type: 'DicomModalityStore', local: ASYNC.aet, remote: DEST_ASYNC.aet, state: 'Success' },
    ]);
  });

  it('the sub-operations are reported completed before anything is sent: a destination that nobody listens on still gets Success, and the job fails', async () => {
    const keys = [`QueryRetrieveLevel=SERIES`, `SeriesInstanceUID=${series(1, 1)}\\${series(4, 1)}`];
    const expected = entitled('A', 'seriesInstanceUid', [series(1, 1), series(4, 1)]);
    expect(expected).toHaveLength(4);
    const before = (await jobsOf()).map((job) => job.ID);
    const run = await movescu({ port: ASYNC.port, calledAet: ASYNC.aet, destination: 'DEST_DOWN', model: 'S', keys });
    expectSuccess(run, expected.length);
    const jobs = await finishedJobsSince(before);
    expect(jobs.map((job) => ({ ...summary(job), state: job.State }))).toEqual([
      { type: 'DicomModalityStore', local: ASYNC.aet, remote: 'DEST_DOWN', state: 'Failure' },
    ]);
    await expectAlive(asyncOrthanc, ASYNC);
  });

  it('compared with the main port with the same setting, for a single resource: the same responses, the same instances sent', async () => {
    // Study 1 holds only A's instances: both ports send the same four.
    const keys = [`QueryRetrieveLevel=STUDY`, `StudyInstanceUID=${study(1)}`];
    const expected = entitled('A', 'studyInstanceUid', [study(1)]);
    expect(expected).toEqual(uidsOf(DATA.filter((instance) => instance.studyInstanceUid === study(1))));

    DEST_ASYNC.reset();
    const ours = await movescu({ port: ASYNC.port, calledAet: ASYNC.aet, destination: DEST_ASYNC.aet, model: 'S', keys });
    expect((await DEST_ASYNC.received(expected.length)).uids).toEqual(expected);
    DEST_ASYNC.reset();
    const theirs = await movescu({ port: asyncOrthanc.dicomPort, calledAet: 'ORTHANC', destination: DEST_ASYNC.aet, model: 'S', keys });
    expect((await DEST_ASYNC.received(expected.length)).uids).toEqual(expected);

    // The core's asynchronous C-MOVE (1.12.7) reports, without waiting for the job, one
    // completed sub-operation per instance of the (last) matched resource.
    expectSuccess(theirs, 4);
    expectSuccess(ours, 4);
    expect(ours.responses.map(countsOf), describeRun(ours)).toEqual(theirs.responses.map(countsOf));
  });

  it('a move that matches nothing still answers Success with zero sub-operations, and submits no job', async () => {
    const before = (await asyncOrthanc.rest<string[]>('GET', '/jobs')).body.length;
    DEST_ASYNC.reset();
    // The main port's study; then A's patient at PATIENT level, which A does not label.
    expect(entitled('A', 'patientId', ['RT-PA'])).toHaveLength(5);
    for (const keys of [
      [`QueryRetrieveLevel=STUDY`, `StudyInstanceUID=${study(7)}`],
      [`QueryRetrieveLevel=PATIENT`, `PatientID=RT-PA`],
    ]) {
      const run = await movescu({ port: ASYNC.port, calledAet: ASYNC.aet, destination: DEST_ASYNC.aet, model: 'P', keys });
      expect(run.responses.map(countsOf), describeRun(run)).toEqual([
        { status: '0x0000', remaining: 0, completed: 0, failed: 0, warning: 0 },
      ]);
    }
    expect((await asyncOrthanc.rest<string[]>('GET', '/jobs')).body).toHaveLength(before);
    const received = await DEST_ASYNC.received();
    expect(received.stores).toBe(0);
    expect(received.associations).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------

describe('C-GET refused by the access rules (DicomAlwaysAllowGet false), as on the main port', () => {
  const keys = [`QueryRetrieveLevel=STUDY`, `StudyInstanceUID=${study(1)}`];

  /** What a C-GET came to, comparable between the two ports. */
  const outcome = (run: GetResult) => ({
    associated: run.associations === 1,
    responses: run.responses.map((response) => hex(response.status)),
    received: run.received.length,
    aborted: /Peer aborted Association/.test(run.output),
  });

  it.each([
    { caller: 'NOGET', description: 'a modality with AllowGet false', reason: 'The DICOM command Get is not allowed for this modality' },
    { caller: 'STRANGER', description: 'an AET that is not in DicomModalities', reason: 'This AET is not listed in configuration option "DicomModalities"' },
  ])('$description', async ({ caller, reason }) => {
    const since = main.log().length;
    const ours = await getscu({ port: A.port, calledAet: A.aet, callingAet: caller, model: 'S', keys });
    const theirs = await getscu({ port: main.dicomPort, calledAet: 'ORTHANC', callingAet: caller, model: 'S', keys });
    expect(outcome(ours), describeRun(ours)).toEqual(outcome(theirs));
    // The association is accepted, then aborted at the C-GET: nothing is sent.
    expect(outcome(ours), describeRun(ours)).toEqual({ associated: true, responses: [], received: 0, aborted: true });
    await main.waitForLog(
      literal(`${tenantName(0, A.aet)}: DICOM authorization rejected for AET ${caller} on IP 127.0.0.1 calling AET ${A.aet}: ${reason}`),
      5_000,
      since,
    );
    await expectAlive(main, A);
  });
});

// ---------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------

describe('parallel retrieves', () => {
  it('six at once (three moves, three gets, through both tenants) all complete with the right sets', async () => {
    const jobs: { kind: 'move' | 'get'; tenant: Tenant; field: KeyField; level: string; key: string; values: string[]; destination?: Destination }[] = [
      { kind: 'move', tenant: 'A', field: 'studyInstanceUid', level: 'STUDY', key: 'StudyInstanceUID', values: [study(1), study(4)], destination: PARALLEL[0] },
      { kind: 'move', tenant: 'B', field: 'studyInstanceUid', level: 'STUDY', key: 'StudyInstanceUID', values: [study(3), study(4), study(6)], destination: PARALLEL[1] },
      { kind: 'move', tenant: 'A', field: 'seriesInstanceUid', level: 'SERIES', key: 'SeriesInstanceUID', values: [series(1, 2), series(2, 1), series(5, 1)], destination: PARALLEL[2] },
      { kind: 'get', tenant: 'B', field: 'seriesInstanceUid', level: 'SERIES', key: 'SeriesInstanceUID', values: [series(3, 1), series(4, 2), series(4, 1)] },
      { kind: 'get', tenant: 'A', field: 'studyInstanceUid', level: 'STUDY', key: 'StudyInstanceUID', values: [study(1), study(2), study(4), study(5)] },
      { kind: 'get', tenant: 'B', field: 'sopInstanceUid', level: 'IMAGE', key: 'SOPInstanceUID', values: uidsOf(DATA) },
    ];
    for (const destination of PARALLEL) destination.reset();
    const runs = await Promise.all(
      jobs.map(async (job) => {
        const tenant = TENANT[job.tenant]();
        const options = { port: tenant.port, calledAet: tenant.aet, model: 'S' as const, keys: [`QueryRetrieveLevel=${job.level}`, `${job.key}=${job.values.join('\\')}`] };
        if (job.kind === 'get') {
          const run = await getscu(options);
          return { run, uids: run.received, stores: run.stores };
        }
        const run = await movescu({ ...options, destination: job.destination!.aet });
        const received = await job.destination!.received(entitled(job.tenant, job.field, job.values).length, 2_000);
        expect(received.associations).toEqual([{ calling: tenant.aet, called: job.destination!.aet }]);
        return { run, uids: received.uids, stores: received.stores };
      }),
    );
    for (const [i, job] of jobs.entries()) {
      const expected = entitled(job.tenant, job.field, job.values);
      const { run, uids, stores } = runs[i]!;
      expect(uids, `${job.kind} ${job.tenant} ${job.level}: ${describeRun(run)}`).toEqual(expected);
      expect(stores).toBe(expected.length);
      expectSuccess(run, expected.length);
    }
  });
});


// ---------------------------------------------------------------------------------------

describe('malformed identifiers: a failure status or the right answer, and Orthanc lives', () => {
  /** The tenant's and the main port's answers to the same identifier. */
  async function bothPorts(keys: string[]) {
    DEST.reset();
    const ours = await movescu({ port: A.port, calledAet: A.aet, destination: DEST.aet, model: 'S', keys });
    const oursReceived = await DEST.received();
    DEST.reset();
    const theirs = await movescu({ port: main.dicomPort, calledAet: 'ORTHANC', destination: DEST.aet, model: 'S', keys });
    const theirsReceived = await DEST.received();
    await expectAlive(main, A);
    return { ours, oursReceived, theirs, theirsReceived };
  }

  it('no QueryRetrieveLevel: the level is that of the deepest unique key present, as the core deduces it', async () => {
    // StudyInstanceUID and SeriesInstanceUID: the SERIES level.
    const seriesUids = [series(4, 1), series(4, 2)];
    const seriesKeys = [`StudyInstanceUID=${study(4)}`, `SeriesInstanceUID=${seriesUids.join('\\')}`];
    const atSeries = await bothPorts(seriesKeys);
    expect(atSeries.ours.output, 'movescu sends no QueryRetrieveLevel').not.toMatch(/\(0008,0052\)/);
    expect(atSeries.oursReceived.uids, describeRun(atSeries.ours)).toEqual(entitled('A', 'seriesInstanceUid', seriesUids));
    expectSuccess(atSeries.ours, 2);
    // The core: the two series, not the whole study (whose main-port series is left out).
    expect(atSeries.theirsReceived.uids).toEqual(uidsOf(DATA.filter((instance) => seriesUids.includes(instance.seriesInstanceUid))));
    const get = await getscu({ port: B.port, calledAet: B.aet, model: 'S', keys: seriesKeys });
    expect(get.received, describeRun(get)).toEqual(entitled('B', 'seriesInstanceUid', seriesUids));
    expectSuccess(get, 2);

    // PatientID and StudyInstanceUID: the STUDY level.
    const atStudy = await bothPorts([`PatientID=RT-PS`, `StudyInstanceUID=${study(4)}`]);
    expect(atStudy.oursReceived.uids, describeRun(atStudy.ours)).toEqual(entitled('A', 'studyInstanceUid', [study(4)]));
    expectSuccess(atStudy.ours, 2);
    expect(atStudy.theirsReceived.uids).toEqual(uidsOf(DATA.filter((instance) => instance.studyInstanceUid === study(4))));
  });

  it('no QueryRetrieveLevel and no unique key: a failure status, as the main port', async () => {
    const { ours, oursReceived, theirs } = await bothPorts([`PatientName=Retrieve*`, `Modality=CT`]);
    expectFailure(ours);
    expectFailure(theirs);
    expect(hex(finalStatus(ours))).toBe(hex(finalStatus(theirs)));
    expect(oursReceived.stores).toBe(0);
  });

  it('IMAGE level without SOPInstanceUID: a failure status, nothing sent, as the main port', async () => {
    const keys = [`QueryRetrieveLevel=IMAGE`, `StudyInstanceUID=${study(1)}`, `SeriesInstanceUID=${series(1, 1)}`];
    const { ours, oursReceived, theirs, theirsReceived } = await bothPorts(keys);
    expectFailure(ours);
    expectFailure(theirs);
    expect(hex(finalStatus(ours))).toBe(hex(finalStatus(theirs)));
    expect(oursReceived.stores).toBe(0);
    expect(theirsReceived.stores).toBe(0);
    const get = await getscu({ port: A.port, calledAet: A.aet, model: 'S', keys });
    expectFailure(get);
    expect(get.received).toEqual([]);
    await expectAlive(main, A);
  });

  it('an invalid QueryRetrieveLevel: a failure status, nothing sent, as the main port', async () => {
    const keys = [`QueryRetrieveLevel=NONSENSE`, `StudyInstanceUID=${study(1)}`];
    const { ours, oursReceived, theirs } = await bothPorts(keys);
    expectFailure(ours);
    expectFailure(theirs);
    expect(hex(finalStatus(ours))).toBe(hex(finalStatus(theirs)));
    expect(oursReceived.stores).toBe(0);
    const get = await getscu({ port: A.port, calledAet: A.aet, model: 'S', keys });
    expectFailure(get);
    expect(get.received).toEqual([]);
    await expectAlive(main, A);
  });

  it('a list of 1,000 SOP Instance UIDs at IMAGE level: exactly the tenant\'s instances among them', async () => {
    // Every stored instance (A's, B's, C's, P's, the main port's) and 975 UIDs Orthanc does not have.
    const uids = [...uidsOf(DATA), ...Array.from({ length: 1_000 - DATA.length }, (_, i) => `${ROOT}.777.${i + 1}`)];
    expect(uids).toHaveLength(1_000);
    const keys = [`QueryRetrieveLevel=IMAGE`, `SOPInstanceUID=${uids.join('\\')}`];
    for (const tenant of ['A', 'B'] as const) {
      const { port, aet } = TENANT[tenant]();
      const expected = entitled(tenant, 'sopInstanceUid', uids);
      DEST.reset();
      const move = await movescu({ port, calledAet: aet, destination: DEST.aet, model: 'S', keys });
      const received = await DEST.received(expected.length, 2_000);
      expect(received.uids, describeRun(move)).toEqual(expected);
      expect(received.stores).toBe(expected.length);
      expectSuccess(move, expected.length);

      const get = await getscu({ port, calledAet: aet, model: 'S', keys });
      expect(get.received, describeRun(get)).toEqual(expected);
      expectSuccess(get, expected.length);
    }
    await expectAlive(main, A);
  });
});
