// The plugin on a PostgreSQL cluster: two Orthanc nodes sharing one PostgreSQL 17
// database (test/support/postgresql.ts, a throwaway server) for the index and the DICOM
// files ("EnableStorage": true, "Lock": false; test/support/cluster.ts). Both nodes have
// the same MultitenantDicom section: TENANT_A (label a) and TENANT_B (label b), and
// DEL_A and DEL_B (labels at every level, for PATIENT-level queries), each on its own
// port per node. A tenant is the same tenant on every node: what it stored through one
// node, it finds and retrieves through the other; the other tenant sees none of it on
// any node.
//
// Node 2 runs in a network namespace of its own (test/support/network-namespace.ts), as
// on a second host: a veth link, 10.211.0.1 on the test's side, 10.211.0.2 on node 2's.
// Node 2 reaches PostgreSQL and the move destination at 10.211.0.1; the test reaches
// node 2's HTTP and DICOM ports at 10.211.0.2, node 1's at 127.0.0.1. Every check runs on
// this layout: a tenant added at run time has one port, which every node opens, and two
// nodes can only both listen on it from two network namespaces. It needs root in a
// private network namespace (scripts/debian13.sh --private-network).
//
// - the nodes: each really runs on PostgreSQL (index and storage plugins in /system),
//   and the files live in the database (no file in a node's folder);
// - a study stored through node 1's A is found and retrieved (C-MOVE and C-GET) through
//   node 2's A, exactly its instances, and not through B on either node;
// - the same SOP Instance UID with different content, sent at the same moment through A
//   on one node and B on the other (10 rounds): exactly one winner per round, whose
//   content and labels Orthanc holds; the loser is refused and sees nothing;
// - concurrent stores through A on node 1 and B on node 2 (their own studies, and one
//   study both store a series into): every store succeeds (the nodes retry PostgreSQL's
//   serialization failures), and each tenant sees exactly its own, from both nodes;
// - a tenant added at run time through one node's REST API (kept in the plugin's table
//   multitenant_dicom_tenants of the shared database, which every node reads again every
//   3 s, and in no node's row of serverproperties) opens on the other node within 10 s and
//   serves there; a change made through the other node is followed, and the deletion
//   closes it, each within 10 s (the times are printed);
// - another sender's part deleted from a patient, study or series that DEL_B shares with
//   DEL_A across nodes (DEL_A stored through node 1, DEL_B through node 2; the deletion
//   through node 1's or node 2's REST API): the patient is marked "multitenant-mixed"
//   while shared, rebuilt once the deletion leaves one sender, and then through DEL_B on
//   both nodes, at every query level, only DEL_B's values show and match; through DEL_A,
//   nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  POSTGRESQL_INDEX_PLUGIN,
  POSTGRESQL_STORAGE_PLUGIN,
  startCluster,
  type ClusterNode,
  type ClusterTenant,
} from '../support/cluster.js';
import { dicomStrings, echoOutcome, echoscu, runTool, type DcmtkResult, type DicomJson } from '../support/dcmtk.js';
import {
  orthancIds,
  PATIENT_NAMES,
  uidRoot,
  writeDataset,
  writeInstance,
  type SyntheticInstance,
} from '../support/dataset.js';
import { cfind, valueOf, type Answer } from '../support/find-data.js';
import { createNetworkNamespace, type NetworkNamespace } from '../support/network-namespace.js';
import { canConnect, freePort, stopAllOrthancs } from '../support/orthanc.js';
import { logLines } from '../support/plugin.js';
import { startPostgres, stopAllPostgres, type RunningPostgres } from '../support/postgresql.js';
import {
  deletionUri,
  findingsThroughDeleted,
  findingsThroughRemaining,
  isMarkedMixed,
  MIXED,
  writeSharingPair,
  type QueryLevel,
  type Shares,
  type SharingPair,
  type TenantFind,
} from '../support/shared-patient.js';
import { waitForPort, waitUntil } from '../support/wait.js';

const A: ClusterTenant = { AET: 'TENANT_A', Labels: ['a'] };
const B: ClusterTenant = { AET: 'TENANT_B', Labels: ['b'] };
/** Labels at every level (PATIENT-level queries), for the deletion checks. */
const ALL_LEVELS = ['Patient', 'Study', 'Series', 'Instance'];
const DEL_A: ClusterTenant = { AET: 'DEL_A', Labels: ['del_a'], LabelsStoreLevels: ALL_LEVELS };
const DEL_B: ClusterTenant = { AET: 'DEL_B', Labels: ['del_b'], LabelsStoreLevels: ALL_LEVELS };
/** The two tenants of the first checks. */
type TenantName = 'A' | 'B';
type AnyTenant = TenantName | 'DEL_A' | 'DEL_B';
const TENANTS: Record<AnyTenant, ClusterTenant> = { A, B, DEL_A, DEL_B };

/** The link between the test's network namespace and node 2's. */
const LINK = { hostAddress: '10.211.0.1', address: '10.211.0.2' };

const SCU_AET = 'CLUSTER_SCU';
const DEST_AET = 'CLUSTER_DEST';
const TIMEOUT_MS = 120_000;

let directory: string;
let namespace: NetworkNamespace | undefined;
let postgres: RunningPostgres;
let nodes: ClusterNode[];
let node1: ClusterNode;
let node2: ClusterNode;
let destination: Destination;

// ---------------------------------------------------------------------------------------
// Helpers: DCMTK through a tenant of a node.

const uidsOf = (instances: SyntheticInstance[]) => instances.map((instance) => instance.sopInstanceUid).sort();
const unique = (values: string[]) => [...new Set(values)].sort();
const through = (node: ClusterNode, tenant: AnyTenant) => `${node.name}'s ${TENANTS[tenant].AET}`;

/** Without DCMTK's hex dumps, for failure messages. */
function describeOutput(result: DcmtkResult): string {
  return `exit code ${result.code}:\n${(result.stdout + result.stderr)
    .split('\n')
    .filter((line) => !/^D: +([0-9a-f]{2} +)+[0-9a-f]{2}$/.test(line) && !/^D: +(Context ID|Abstract Syntax|Proposed|=)/.test(line))
    .join('\n')}`;
}

interface StoreRun {
  result: DcmtkResult;
  /** The DIMSE status of each C-STORE response, in the order of the files. */
  statuses: number[];
}

/** A tenant's DICOM server on a node. */
interface Endpoint {
  host: string;
  port: number;
  calledAet: string;
}

const storeArgsAt = (endpoint: Endpoint, files: string[]) => [
  '-d', '-nh', '-aet', SCU_AET, '-aec', endpoint.calledAet, endpoint.host, String(endpoint.port), ...files,
];
const storeArgs = (node: ClusterNode, tenant: AnyTenant, files: string[]) => storeArgsAt(node.tenant(TENANTS[tenant].AET), files);

function toStoreRun(result: DcmtkResult): StoreRun {
  const statuses = [...(result.stdout + result.stderr).matchAll(/^D: DIMSE Status\s*:\s*0x([0-9a-fA-F]{4})/gm)].map((match) =>
    Number.parseInt(match[1]!, 16),
  );
  return { result, statuses };
}

/**
 * A DCMTK tool held back until go(): a shell, already running, waits in `read`, then
 * execs the tool. Several of them, released in the same tick, start their tool at the
 * same moment (the fork of each is behind them).
 */
interface HeldTool {
  go(): void;
  result: Promise<DcmtkResult>;
}

/** DCMTK processes started here (not through runTool): killed if this process exits. */
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

async function holdTool(command: string, args: string[], timeoutMs = TIMEOUT_MS): Promise<HeldTool> {
  const child = spawn('/bin/sh', ['-c', 'read go && exec "$0" "$@"', command, ...args], {
    env: { ...process.env, TCP_NODELAY: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const result = new Promise<DcmtkResult>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    child.stdin.once('finish', () => (timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)));
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr, ok: code === 0 && !/^[EF]: /m.test(stdout + stderr) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return { go: () => child.stdin.end('go\n'), result };
}

/** storescu runs through tenants of nodes, all released at the same moment. */
async function storeAtOnce(...runs: { node: ClusterNode; tenant: TenantName; files: string[] }[]): Promise<StoreRun[]> {
  const held = await Promise.all(runs.map(({ node, tenant, files }) => holdTool('storescu', storeArgs(node, tenant, files))));
  for (const tool of held) tool.go();
  return (await Promise.all(held.map((tool) => tool.result))).map(toStoreRun);
}

async function store(node: ClusterNode, tenant: AnyTenant, files: string[]): Promise<StoreRun> {
  return storeAt(node.tenant(TENANTS[tenant].AET), files);
}

async function storeAt(endpoint: Endpoint, files: string[]): Promise<StoreRun> {
  return toStoreRun(await runTool('storescu', storeArgsAt(endpoint, files), TIMEOUT_MS));
}

/** Every file answered Success. */
function expectStored(run: StoreRun, files: string[], what: string) {
  expect(run.statuses.map(hex), `${what}: ${describeOutput(run.result)}`).toEqual(files.map(() => '0x0000'));
  expect(run.result.ok, `${what}: ${describeOutput(run.result)}`).toBe(true);
}

const hex = (status: number) => `0x${status.toString(16).padStart(4, '0')}`;

/** C-FIND (Study Root) through a tenant of a node: its answers, text decoded from their character set. */
function find(node: ClusterNode, tenant: AnyTenant, level: QueryLevel, keys: string[]): Promise<Answer[]> {
  return findAt(node.tenant(TENANTS[tenant].AET), level, keys, through(node, tenant));
}

/** C-FIND (Study Root) through a tenant's DICOM server (`what` names it in messages); it must end with Success. */
async function findAt(endpoint: Endpoint, level: QueryLevel, keys: string[], what: string): Promise<Answer[]> {
  const query = { name: `${level} through ${what}`, level, model: 'study' as const, keys };
  const outcome = await cfind(join(directory, 'find'), { ...endpoint, callingAet: SCU_AET }, query);
  expect(outcome.status, `C-FIND ${query.name}: ${describeOutput(outcome.tool)}`).toBe('Success');
  return outcome.answers;
}

/** The value of an attribute in every answer, sorted. */
const answered = (answers: Answer[], keyword: string) => answers.map((answer) => valueOf(answer, keyword)).sort();

interface Retrieved {
  /** The final response's status; undefined without one. */
  status: number | undefined;
  completed: number | undefined;
  failed: number | undefined;
  /** SOP Instance UIDs of the files that arrived (duplicates included). */
  received: string[];
  /** The files that arrived, by SOP Instance UID. */
  files: Map<string, string>;
  output: DcmtkResult;
}

/** The final C-MOVE-RSP / C-GET-RSP of a -d output. */
function finalResponse(output: string, messageType: 'C-MOVE RSP' | 'C-GET RSP') {
  const blocks = output.split('INCOMING DIMSE MESSAGE').slice(1).map((block) => block.split('END DIMSE MESSAGE')[0]!);
  const field = (block: string, name: string) => block.match(new RegExp(`^D: ${name} +: (.*)$`, 'm'))?.[1]?.trim();
  const count = (block: string, name: string) => {
    const value = field(block, name);
    return value === undefined || value === 'none' ? undefined : Number(value);
  };
  const final = blocks.filter((block) => field(block, 'Message Type') === messageType).at(-1);
  if (final === undefined) return { status: undefined, completed: undefined, failed: undefined };
  return {
    status: Number.parseInt(field(final, 'DIMSE Status')!.slice(2, 6), 16),
    completed: count(final, 'Completed Suboperations'),
    failed: count(final, 'Failed Suboperations'),
  };
}

/** SOP Instance UIDs of the files a storescp or getscu wrote ("<modality>.<SOP Instance UID>"). */
async function filesIn(folder: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const name of await readdir(folder)) files.set(name.slice(name.indexOf('.') + 1), join(folder, name));
  return files;
}

/** C-MOVE at STUDY level through a tenant of a node, to the storescp destination. */
async function move(node: ClusterNode, tenant: AnyTenant, studyUids: string[]): Promise<Retrieved> {
  await destination.clear();
  const output = await runTool(
    'movescu',
    ['-d', '-S', '-aet', SCU_AET, '-aec', TENANTS[tenant].AET, '-aem', DEST_AET, '-k', 'QueryRetrieveLevel=STUDY',
      '-k', `StudyInstanceUID=${studyUids.join('\\')}`, node.host, String(node.ports[TENANTS[tenant].AET])],
    TIMEOUT_MS,
  );
  const files = await filesIn(destination.folder);
  return { ...finalResponse(output.stdout + output.stderr, 'C-MOVE RSP'), received: [...files.keys()].sort(), files, output };
}

/** C-GET at STUDY level through a tenant of a node; the files stay until the test file ends. */
async function get(node: ClusterNode, tenant: AnyTenant, studyUids: string[]): Promise<Retrieved> {
  const folder = await mkdtemp(join(directory, 'get-'));
  const output = await runTool(
    'getscu',
    ['-d', '-S', '-aet', SCU_AET, '-aec', TENANTS[tenant].AET, '-od', folder, '-k', 'QueryRetrieveLevel=STUDY',
      '-k', `StudyInstanceUID=${studyUids.join('\\')}`, node.host, String(node.ports[TENANTS[tenant].AET])],
    TIMEOUT_MS,
  );
  const files = await filesIn(folder);
  return { ...finalResponse(output.stdout + output.stderr, 'C-GET RSP'), received: [...files.keys()].sort(), files, output };
}

/** A retrieve that ends with Success and sent exactly `expected` (SOP Instance UIDs). */
function expectRetrieved(run: Retrieved, expected: string[], what: string) {
  const message = `${what}: ${describeOutput(run.output)}`;
  expect(run.received, message).toEqual([...expected].sort());
  expect({ status: run.status, completed: run.completed ?? 0, failed: run.failed ?? 0 }, message).toEqual({
    status: 0x0000,
    completed: expected.length,
    failed: 0,
  });
}

/** A DICOM file's tags, as DCMTK's dcm2json gives them (text in UTF-8). */
async function tagsOfFile(path: string): Promise<DicomJson> {
  const converted = await runTool('dcm2json', [path]);
  if (converted.code !== 0) throw new Error(`dcm2json ${path} failed: ${converted.stderr}`);
  return JSON.parse(converted.stdout) as DicomJson;
}

// ---------------------------------------------------------------------------------------
// Helpers: what Orthanc holds (the same database, asked through each node's REST API).

type Level = 'Patient' | 'Study' | 'Series' | 'Instance';
const URI: Record<Level, string> = { Patient: 'patients', Study: 'studies', Series: 'series', Instance: 'instances' };

const STORE_LEVELS: Level[] = ['Study', 'Series', 'Instance']; // the default LabelsStoreLevels

/**
 * The labels every resource of these instances (patient, study, series, instance) must
 * carry when each group was stored through a tenant with these labels (the default
 * LabelsStoreLevels), keyed by "<level> <DICOM identifier>" for readable diffs.
 */
function expectedLabels(...stored: [SyntheticInstance[], string[]][]): Map<string, { uri: string; labels: string[] }> {
  const expected = new Map<string, { uri: string; labels: string[] }>();
  for (const [instances, labels] of stored) {
    for (const instance of instances) {
      const ids = orthancIds(instance);
      const resources: [Level, string, string][] = [
        ['Patient', instance.patientId, ids.patient],
        ['Study', instance.studyInstanceUid, ids.study],
        ['Series', instance.seriesInstanceUid, ids.series],
        ['Instance', instance.sopInstanceUid, ids.instance],
      ];
      for (const [level, dicomId, id] of resources) {
        const key = `${level} ${dicomId}`;
        const entry = expected.get(key) ?? { uri: `/${URI[level]}/${id}/labels`, labels: [] };
        if (STORE_LEVELS.includes(level)) entry.labels = unique([...entry.labels, ...labels]);
        expected.set(key, entry);
      }
    }
  }
  return expected;
}

/** What a node reports for these resources: their labels, or "missing". */
async function actualLabels(node: ClusterNode, expected: Map<string, { uri: string }>): Promise<Record<string, string[] | 'missing'>> {
  const entries = [...expected];
  const actual: Record<string, string[] | 'missing'> = {};
  for (let i = 0; i < entries.length; i += 16) {
    await Promise.all(
      entries.slice(i, i + 16).map(async ([key, { uri }]) => {
        const response = await node.orthanc.rest<string[]>('GET', uri);
        if (response.status === 404) actual[key] = 'missing';
        else {
          expect(response.status, `${node.name}: GET ${uri}`).toBe(200);
          // Without the plugin's own mark of patients of several senders (test/integration/deletion.test.ts).
          actual[key] = response.body.filter((label) => label !== 'multitenant-mixed').sort();
        }
      }),
    );
  }
  return actual;
}

/** Every node reports exactly the expected labels. */
async function expectLabels(expected: Map<string, { uri: string; labels: string[] }>, message = '') {
  const wanted = Object.fromEntries([...expected].map(([key, { labels }]) => [key, labels]));
  for (const node of nodes) expect(await actualLabels(node, expected), `${node.name}: labels${message}`).toEqual(wanted);
}

/** The Orthanc IDs of the instances with this SOP Instance UID. */
async function instancesWithUid(node: ClusterNode, sopInstanceUid: string): Promise<string[]> {
  const response = await node.orthanc.rest<{ Type: string; ID: string }[]>('POST', '/tools/lookup', sopInstanceUid);
  expect(response.status).toBe(200);
  return response.body.filter((match) => match.Type === 'Instance').map((match) => match.ID);
}

// ---------------------------------------------------------------------------------------
// The move destination: a storescp known to every node (DicomModalities "dest").

class Destination {
  private constructor(
    readonly port: number,
    readonly folder: string,
    private readonly child: ChildProcess,
    private readonly output: () => string,
  ) {}

  static async start(): Promise<Destination> {
    const port = await freePort();
    const folder = join(directory, 'destination');
    await mkdir(folder, { recursive: true });
    const child = spawn('storescp', ['-aet', DEST_AET, '-od', folder, String(port)], {
      env: { ...process.env, TCP_NODELAY: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let output = '';
    for (const stream of [child.stdout, child.stderr]) stream.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 60_000;
    while (!(await echoscu({ port, calledAet: DEST_AET, callingAet: 'PROBE', timeoutMs: 5_000 })).ok) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`storescp did not start:\n${output}`);
      await sleep(50);
    }
    return new Destination(port, folder, child, () => output);
  }

  async clear() {
    for (const name of await readdir(this.folder)) await rm(join(this.folder, name), { force: true });
  }

  stop() {
    this.child.kill('SIGKILL');
  }

  log() {
    return this.output();
  }
}

// ---------------------------------------------------------------------------------------
// The cluster.

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'cluster-test-'));
  // First the link: PostgreSQL listens on its address too.
  namespace = await createNetworkNamespace(LINK);
  [postgres, destination] = await Promise.all([
    startPostgres({ listenAddresses: ['127.0.0.1', namespace.hostAddress], clientAddresses: [`${namespace.address}/32`] }),
    Destination.start(),
  ]);
  nodes = await startCluster(
    {
      database: postgres.database,
      tenants: [A, B, DEL_A, DEL_B],
      configuration: {
        // C-FIND answers are in DefaultEncoding (Latin-1 by default: Greek and Cyrillic names would be lost).
        DefaultEncoding: 'Utf8',
        DicomModalities: {
          // The calling AET of every DCMTK tool here (its host is not checked: DicomCheckModalityHost is false).
          scu: { AET: SCU_AET, Host: '127.0.0.1', Port: 104 },
          // The storescp listens on every address of the test's namespace: node 2 reaches it over the link.
          dest: { AET: DEST_AET, Host: namespace.hostAddress, Port: destination.port },
        },
      },
      // Node 2, as on another host: in its own network namespace, PostgreSQL over the link.
      nodes: [{}, { networkNamespace: namespace, postgresql: { Host: namespace.hostAddress } }],
    },
    2,
  );
  [node1, node2] = nodes as [ClusterNode, ClusterNode];
}, 300_000);

afterAll(async () => {
  // MTD_CLUSTER_LOGS=<folder> keeps the logs of the nodes and of PostgreSQL (inside the
  // Debian 13 sandbox, a folder of the checkout).
  const logFolder = process.env['MTD_CLUSTER_LOGS'];
  if (logFolder !== undefined && nodes !== undefined) {
    await mkdir(logFolder, { recursive: true });
    for (const node of nodes) await writeFile(join(logFolder, `${node.name}.log`), node.orthanc.log());
    await writeFile(join(logFolder, 'postgresql.log'), postgres.log());
  }
  destination?.stop();
  // The nodes first: they hold connections to the database.
  await stopAllOrthancs();
  await stopAllPostgres();
  await namespace?.remove();
  if (directory !== undefined) await rm(directory, { recursive: true, force: true });
}, 180_000);

/** "could not serialize access" lines in a node's log (PostgreSQL's serialization failures, retried by Orthanc). */
const serializationFailures = (node: ClusterNode, since = 0) =>
  (node.orthanc.log().slice(since).match(/could not serialize access/g) ?? []).length;

/**
 * Error lines in a node's log since a position (the plugin's, Orthanc's, the PostgreSQL
 * plugins'), but for the serialization failures that Orthanc retries.
 */
const unexpectedErrors = (node: ClusterNode, since = 0) =>
  logLines(node.orthanc.log().slice(since))
    .filter((line) => line.level === 'E' && !/could not serialize access/.test(line.message))
    .map((line) => `${node.name}: ${line.source}] ${line.message}`);

// ---------------------------------------------------------------------------------------

describe('the nodes', () => {
  it('each runs on the PostgreSQL index and storage plugins, with labels, under its own server identifier', async () => {
    for (const node of nodes) {
      const system = await node.orthanc.rest<Record<string, unknown>>('GET', '/system');
      expect(system.status).toBe(200);
      const { DatabaseBackendPlugin, StorageAreaPlugin, HasLabels, DatabaseServerIdentifier } = system.body;
      expect(
        { DatabaseBackendPlugin, StorageAreaPlugin, HasLabels, DatabaseServerIdentifier },
        `${node.name}: /system ${JSON.stringify(system.body)}`,
      ).toEqual({
        // /system names the files the plugin links resolve to.
        DatabaseBackendPlugin: realpathSync(POSTGRESQL_INDEX_PLUGIN),
        StorageAreaPlugin: realpathSync(POSTGRESQL_STORAGE_PLUGIN),
        HasLabels: true,
        DatabaseServerIdentifier: node.name,
      });
    }
  }, TIMEOUT_MS);

  it('node 2 runs as on another host: its ports are in its own network namespace, and it reaches PostgreSQL over the link', async () => {
    expect(node2.host).toBe(LINK.address);
    for (const port of [node2.orthanc.httpPort, node2.orthanc.dicomPort, ...Object.values(node2.ports)]) {
      expect(await canConnect(port, LINK.address), `port ${port} at ${LINK.address}`).toBe(true);
      expect(await canConnect(port, '127.0.0.1'), `port ${port} on the test's loopback`).toBe(false);
    }
    const clients = await postgres.sql('postgres', `SELECT DISTINCT client_addr FROM pg_stat_activity WHERE datname = '${postgres.database.database}' AND client_addr IS NOT NULL ORDER BY 1`);
    // Node 1 over the loopback, node 2 from its end of the link.
    expect(clients.trim().split('\n'), 'the addresses of the connections to the database').toEqual([LINK.address, '127.0.0.1']);
  }, TIMEOUT_MS);
});

// ---------------------------------------------------------------------------------------

describe("a study stored through node 1's tenant A", () => {
  // Three patients (ISO_IR 100, ISO_IR 192 and ISO_IR 144 names), a study each, of two
  // series of two instances.
  let data: SyntheticInstance[];
  let studies: string[];

  beforeAll(async () => {
    data = await writeDataset(join(directory, 'one-node'), {
      prefix: 'cluster-one-node',
      patients: 3,
      studiesPerPatient: 1,
      seriesPerStudy: 2,
      instancesPerSeries: 2,
    });
    studies = unique(data.map((instance) => instance.studyInstanceUid));
    const files = data.map((instance) => instance.path);
    expectStored(await store(node1, 'A', files), files, "storescu through node 1's A");
  }, TIMEOUT_MS);

  it('is labelled a at Study, Series and Instance levels, as both nodes report', async () => {
    await expectLabels(expectedLabels([data, ['a']]));
  }, TIMEOUT_MS);

  it('lives in PostgreSQL: each DICOM file is in the storage table, none in a node\'s folder', async () => {
    const uuids: string[] = [];
    for (const instance of data) {
      const info = await node2.orthanc.rest<{ Uuid: string }>('GET', `/instances/${orthancIds(instance).instance}/attachments/dicom/info`);
      expect(info.status).toBe(200);
      uuids.push(info.body.Uuid);
    }
    const stored = await postgres.sql(
      postgres.database.database,
      `SELECT uuid FROM StorageArea WHERE uuid IN (${uuids.map((uuid) => `'${uuid}'`).join(', ')})`,
    );
    expect(stored.trim().split('\n').sort()).toEqual([...uuids].sort());
    for (const node of nodes) {
      const files: string[] = [];
      for (const entry of await readdir(node.orthanc.directory, { recursive: true })) {
        if ((await stat(join(node.orthanc.directory, entry))).isFile()) files.push(entry);
      }
      expect(files, `${node.name}'s folder`).toEqual(['configuration.json']);
    }
  }, TIMEOUT_MS);

  it("is found through node 2's A (and node 1's): its studies, names in three character sets, exactly its instances", async () => {
    const names = unique(data.map((instance) => instance.patientName));
    expect(names.map((name) => /^[\x20-\x7e]*$/.test(name))).toEqual([false, false, false]);
    for (const node of [node2, node1]) {
      const studyAnswers = await find(node, 'A', 'STUDY', [`StudyInstanceUID=${studies.join('\\')}`, 'PatientName']);
      expect(answered(studyAnswers, 'StudyInstanceUID'), `${through(node, 'A')}: studies`).toEqual(studies);
      expect(answered(studyAnswers, 'PatientName'), `${through(node, 'A')}: names`).toEqual(names);
      const imageAnswers = await find(node, 'A', 'IMAGE', [`StudyInstanceUID=${studies.join('\\')}`, 'SOPInstanceUID']);
      expect(answered(imageAnswers, 'SOPInstanceUID'), `${through(node, 'A')}: instances`).toEqual(uidsOf(data));
    }
  }, TIMEOUT_MS);

  it("is retrieved through node 2's A (and node 1's): exactly its instances, by C-MOVE and by C-GET", async () => {
    for (const node of [node2, node1]) {
      expectRetrieved(await move(node, 'A', studies), uidsOf(data), `C-MOVE through ${through(node, 'A')}`);
      expectRetrieved(await get(node, 'A', studies), uidsOf(data), `C-GET through ${through(node, 'A')}`);
    }
  }, TIMEOUT_MS);

  it("is neither found nor retrieved through B, on node 2 or node 1", async () => {
    for (const node of [node2, node1]) {
      expect(await find(node, 'B', 'STUDY', [`StudyInstanceUID=${studies.join('\\')}`]), `C-FIND STUDY through ${through(node, 'B')}`).toEqual([]);
      expect(await find(node, 'B', 'IMAGE', [`StudyInstanceUID=${studies.join('\\')}`, 'SOPInstanceUID']), `C-FIND IMAGE through ${through(node, 'B')}`).toEqual([]);
      expectRetrieved(await move(node, 'B', studies), [], `C-MOVE through ${through(node, 'B')}`);
      expectRetrieved(await get(node, 'B', studies), [], `C-GET through ${through(node, 'B')}`);
    }
  }, TIMEOUT_MS);
});

// ---------------------------------------------------------------------------------------

describe('the same SOP Instance UID, different content, sent at the same moment through A on one node and B on the other', () => {
  // Each round has its own UIDs (patient, study, series, instance). A's version has an
  // ISO_IR 100 name, InstanceNumber 1 and a description naming A; B's an ISO_IR 144 name,
  // InstanceNumber 2 and a description naming B; both 256x256 pixels (a longer store).
  // Odd rounds: A on node 1 against B on node 2; even rounds: A on node 2 against B on node 1.
  const ROUNDS = 10;
  const winners: string[] = [];

  afterAll(() => {
    if (winners.length > 0) console.info(`cluster race winners, round by round: ${winners.join(', ')}`);
  });

  for (let round = 1; round <= ROUNDS; round++) {
    const [nodeOfA, nodeOfB] = round % 2 === 1 ? [0, 1] : [1, 0];
    it(`round ${round}: A on node ${nodeOfA + 1} against B on node ${nodeOfB + 1}: one winner, whose content and labels Orthanc holds; the loser is refused and sees nothing`, async () => {
      const root = `${uidRoot('cluster-race')}.${round}`;
      const common = {
        patientId: `RACE-${round}`,
        studyInstanceUid: `${root}.1`,
        seriesInstanceUid: `${root}.1.1`,
        sopInstanceUid: `${root}.1.1.1`,
        modality: 'CT',
      };
      const versions: Record<TenantName, SyntheticInstance> = {
        A: await writeInstance(
          join(directory, 'race', 'A'),
          { ...common, patientName: PATIENT_NAMES['ISO_IR 100']![round % 5]!, specificCharacterSet: 'ISO_IR 100', studyDescription: `Race ${round}, sent through TENANT_A`, instanceNumber: '1' },
          { pixels: { rows: 256, columns: 256 } },
        ),
        B: await writeInstance(
          join(directory, 'race', 'B'),
          { ...common, patientName: PATIENT_NAMES['ISO_IR 144']![round % 5]!, specificCharacterSet: 'ISO_IR 144', studyDescription: `Race ${round}, sent through TENANT_B`, instanceNumber: '2' },
          { pixels: { rows: 256, columns: 256 } },
        ),
      };
      const nodeOf: Record<TenantName, ClusterNode> = { A: nodes[nodeOfA]!, B: nodes[nodeOfB]! };
      const runs = await storeAtOnce(
        { node: nodeOf.A, tenant: 'A', files: [versions.A.path] },
        { node: nodeOf.B, tenant: 'B', files: [versions.B.path] },
      );
      const outcome: Record<TenantName, StoreRun> = { A: runs[0]!, B: runs[1]! };
      const report = (['A', 'B'] as const).map((tenant) => `storescu through ${through(nodeOf[tenant], tenant)}: ${describeOutput(outcome[tenant].result)}`).join('\n\n');

      // Exactly one Success; the other a refusal (0x0124, "ForeignInstances": "Reject") or a failure.
      const succeeded = (['A', 'B'] as const).filter((tenant) => outcome[tenant].statuses[0] === 0x0000);
      expect(succeeded, report).toHaveLength(1);
      const winner = succeeded[0]!;
      const loser: TenantName = winner === 'A' ? 'B' : 'A';
      const loserStatus = outcome[loser].statuses;
      winners.push(`${winner} on node ${nodes.indexOf(nodeOf[winner]) + 1} (${loser}: ${loserStatus.map(hex).join(', ') || 'no status'})`);
      expect(loserStatus.length === 0 || loserStatus[0] === 0x0124 || (loserStatus[0]! & 0xf000) >= 0xa000, report).toBe(true);

      // Orthanc holds one instance with that UID: the winner's content, the winner's labels only.
      for (const node of nodes) {
        expect(await instancesWithUid(node, common.sopInstanceUid), `${node.name}: instances with the UID`).toEqual([orthancIds(versions.A).instance]);
        const tags = await node.orthanc.rest<Record<string, string>>('GET', `/instances/${orthancIds(versions.A).instance}/simplified-tags`);
        expect(
          { StudyDescription: tags.body['StudyDescription'], PatientName: tags.body['PatientName'], InstanceNumber: tags.body['InstanceNumber'] },
          `${node.name}: content\n${report}`,
        ).toEqual({ StudyDescription: versions[winner].studyDescription, PatientName: versions[winner].patientName, InstanceNumber: versions[winner].instanceNumber });
      }
      await expectLabels(expectedLabels([[versions[winner]], TENANTS[winner].Labels]), `\n${report}`);

      // The winner's tenant finds it on both nodes, and retrieves the winner's content
      // through the node it did not store through; the loser's tenant sees nothing.
      for (const node of nodes) {
        const answers = await find(node, winner, 'IMAGE', [`SOPInstanceUID=${common.sopInstanceUid}`, 'StudyDescription', 'InstanceNumber']);
        expect(
          answers.map((answer) => ({ description: valueOf(answer, 'StudyDescription'), number: valueOf(answer, 'InstanceNumber') })),
          `C-FIND through ${through(node, winner)}`,
        ).toEqual([{ description: versions[winner].studyDescription, number: versions[winner].instanceNumber }]);
        expect(await find(node, loser, 'STUDY', [`StudyInstanceUID=${common.studyInstanceUid}`]), `C-FIND STUDY through ${through(node, loser)}`).toEqual([]);
        expect(await find(node, loser, 'IMAGE', [`SOPInstanceUID=${common.sopInstanceUid}`]), `C-FIND IMAGE through ${through(node, loser)}`).toEqual([]);
        expectRetrieved(await get(node, loser, [common.studyInstanceUid]), [], `C-GET through ${through(node, loser)}`);
      }
      const otherNode = nodeOf[winner] === node1 ? node2 : node1;
      const retrieved = await get(otherNode, winner, [common.studyInstanceUid]);
      expectRetrieved(retrieved, [common.sopInstanceUid], `C-GET through ${through(otherNode, winner)}`);
      const file = await tagsOfFile(retrieved.files.get(common.sopInstanceUid)!);
      expect({ description: dicomStrings(file, '00081030'), name: dicomStrings(file, '00100010') }, 'the retrieved file').toEqual({
        description: [versions[winner].studyDescription],
        name: [versions[winner].patientName],
      });
    }, TIMEOUT_MS);
  }
});

// ---------------------------------------------------------------------------------------

describe('concurrent stores through A on node 1 and B on node 2', () => {
  // A's own studies and B's own studies (five patients each, every character set, a
  // study of two series of three instances), and one study that both store a series
  // into at the same time (A through node 2, B through node 1): four associations at
  // once, two per node, the shared patient and study created concurrently.
  let ownA: SyntheticInstance[];
  let ownB: SyntheticInstance[];
  let sharedA: SyntheticInstance[];
  let sharedB: SyntheticInstance[];
  let sharedStudy: string;
  let runs: StoreRun[];
  let logMarks: number[];

  beforeAll(async () => {
    const spec = { patients: 5, studiesPerPatient: 1, seriesPerStudy: 2, instancesPerSeries: 3 };
    const root = uidRoot('cluster-shared');
    sharedStudy = `${root}.1`;
    const sharedSeries = (tenant: TenantName, series: number) =>
      Promise.all(
        [1, 2, 3].map((i) =>
          writeInstance(join(directory, 'shared'), {
            patientId: 'CLUSTER-SHARED',
            patientName: 'Nguyễn^Văn Ánh',
            studyInstanceUid: sharedStudy,
            studyDescription: 'Shared by A and B',
            seriesInstanceUid: `${root}.1.${series}`,
            seriesNumber: String(series),
            sopInstanceUid: `${root}.1.${series}.${i}`,
            instanceNumber: String(i),
            modality: tenant === 'A' ? 'CT' : 'MR',
          }),
        ),
      );
    [ownA, ownB, sharedA, sharedB] = await Promise.all([
      writeDataset(join(directory, 'own-a'), { prefix: 'cluster-own-a', ...spec }),
      writeDataset(join(directory, 'own-b'), { prefix: 'cluster-own-b', ...spec }),
      sharedSeries('A', 1),
      sharedSeries('B', 2),
    ]);
    logMarks = nodes.map((node) => node.orthanc.log().length);
    runs = await storeAtOnce(
      { node: node1, tenant: 'A', files: ownA.map((instance) => instance.path) },
      { node: node2, tenant: 'B', files: ownB.map((instance) => instance.path) },
      { node: node2, tenant: 'A', files: sharedA.map((instance) => instance.path) },
      { node: node1, tenant: 'B', files: sharedB.map((instance) => instance.path) },
    );
  }, TIMEOUT_MS);

  afterAll(() => {
    if (logMarks !== undefined) {
      console.info(
        `cluster concurrent stores: "could not serialize access" lines: ${nodes.map((node, i) => `${node.name} ${serializationFailures(node, logMarks[i])}`).join(', ')}`,
      );
    }
  });

  it('every store succeeds, and no node logs an error but the retried serialization failures', () => {
    const sets = [ownA, ownB, sharedA, sharedB];
    const names = ["node 1's A (own)", "node 2's B (own)", "node 2's A (shared study)", "node 1's B (shared study)"];
    runs.forEach((run, i) => expectStored(run, sets[i]!.map((instance) => instance.path), `storescu through ${names[i]}`));
    expect(nodes.flatMap((node, i) => unexpectedErrors(node, logMarks[i]))).toEqual([]);
  }, TIMEOUT_MS);

  it('each resource carries exactly the labels of the tenants that stored into it, on both nodes', async () => {
    // The shared study carries a and b; its series and instances, their sender's only.
    await expectLabels(expectedLabels([ownA, ['a']], [ownB, ['b']], [sharedA, ['a']], [sharedB, ['b']]));
  }, TIMEOUT_MS);

  it('each tenant finds exactly its own studies and instances, on both nodes', async () => {
    const studiesOf = (instances: SyntheticInstance[]) => unique(instances.map((instance) => instance.studyInstanceUid));
    const everyStudy = unique([...studiesOf(ownA), ...studiesOf(ownB), sharedStudy]);
    const expected: Record<TenantName, { studies: string[]; instances: string[] }> = {
      A: { studies: unique([...studiesOf(ownA), sharedStudy]), instances: uidsOf([...ownA, ...sharedA]) },
      B: { studies: unique([...studiesOf(ownB), sharedStudy]), instances: uidsOf([...ownB, ...sharedB]) },
    };
    for (const node of nodes) {
      for (const tenant of ['A', 'B'] as const) {
        const studies = await find(node, tenant, 'STUDY', [`StudyInstanceUID=${everyStudy.join('\\')}`]);
        expect(answered(studies, 'StudyInstanceUID'), `C-FIND STUDY through ${through(node, tenant)}`).toEqual(expected[tenant].studies);
        const images = await find(node, tenant, 'IMAGE', [`StudyInstanceUID=${everyStudy.join('\\')}`, 'SOPInstanceUID']);
        expect(answered(images, 'SOPInstanceUID'), `C-FIND IMAGE through ${through(node, tenant)}`).toEqual(expected[tenant].instances);
      }
    }
  }, TIMEOUT_MS);

  it('each tenant retrieves exactly its own series of the shared study, through either node', async () => {
    expectRetrieved(await get(node1, 'A', [sharedStudy]), uidsOf(sharedA), "C-GET through node 1's A");
    expectRetrieved(await move(node2, 'B', [sharedStudy]), uidsOf(sharedB), "C-MOVE through node 2's B");
    expectRetrieved(await move(node1, 'A', [sharedStudy]), uidsOf(sharedA), "C-MOVE through node 1's A");
    expectRetrieved(await get(node2, 'B', [sharedStudy]), uidsOf(sharedB), "C-GET through node 2's B");
  }, TIMEOUT_MS);
});

// ---------------------------------------------------------------------------------------
describe('a tenant added at run time through REST, on both nodes', () => {
  // RUNTIME_T is added through node 1's REST API and kept by the plugin in its table of
  // Orthanc's PostgreSQL database, which every node reads again every 3 s
  // (src/runtime-tenants.ts, src/tenant-store.ts): node 2 must open, move and close its
  // server as node 1 does, on the same port at its own address, within 10 s of the REST
  // call. Each wait polls for up to 30 s, so that a late node is measured too (the times
  // are printed).
  const RT = 'RUNTIME_T';
  const ROUTE = '/plugins/multitenant-dicom/tenants';
  const APPLIED = /the tenants added through REST changed on another node: applied/;
  const WITHIN_MS = 10_000;
  const timings: string[] = [];
  let port: number;
  let movedPort: number;
  let stored: SyntheticInstance[];

  afterAll(() => {
    if (timings.length > 0) console.info(`cluster runtime tenant, until the other node followed: ${timings.join(', ')}`);
  });

  const at = (node: ClusterNode, rtPort: number): Endpoint => ({ host: node.host, port: rtPort, calledAet: RT });
  const echo = async (node: ClusterNode, rtPort: number) =>
    echoOutcome(await echoscu({ ...at(node, rtPort), callingAet: SCU_AET, timeoutMs: 30_000 }));
  const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

  /** Waits until the node's RUNTIME_T port opens (or closes); it must have followed within 10 s of `since`. */
  async function expectFollowed(what: string, node: ClusterNode, rtPort: number, open: boolean, since: number) {
    const took = await waitForPort(rtPort, open, { host: node.host, since, timeoutMs: 30_000 });
    timings.push(`${what} ${seconds(took)}`);
    expect(took, `${node.name} ${open ? 'opened' : 'closed'} port ${rtPort} after ${seconds(took)}`).toBeLessThan(WITHIN_MS);
  }

  /** Node `made` made the last change itself; `follower` logged that it applied another node's change. */
  async function expectApplied(follower: ClusterNode, made: ClusterNode, marks: Map<ClusterNode, number>) {
    await follower.orthanc.waitForLog(APPLIED, 10_000, marks.get(follower));
    expect(made.orthanc.log().slice(marks.get(made)), `${made.name} made the change itself`).not.toMatch(APPLIED);
  }
  const logMarks = () => new Map(nodes.map((node) => [node, node.orthanc.log().length]));

  it("PUT through node 1 opens it there at once; within 10 s node 2 listens on the same port at its own address, answers C-ECHO, and logs that it applied another node's change", async () => {
    port = await freePort();
    const marks = logMarks();
    const sent = performance.now();
    const created = await node1.orthanc.rest<Record<string, unknown>>('PUT', `${ROUTE}/${RT}`, { Port: port, Labels: ['rt'] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ AET: RT, Port: port, Labels: ['rt'], State: 'Listening' });
    expect(await echo(node1, port), "C-ECHO to node 1's RUNTIME_T").toBe('accepted');
    await expectFollowed('created', node2, port, true, sent);
    expect(await echo(node2, port), "C-ECHO to node 2's RUNTIME_T").toBe('accepted');
    await expectApplied(node2, node1, marks);
  }, TIMEOUT_MS);

  it("node 1 keeps it where node 2 reads it: not in a row of node 1's own (PostgreSQL's serverproperties, by DatabaseServerIdentifier), but in the plugin's table", async () => {
    const rows = await postgres.sql(
      postgres.database.database,
      `SELECT server || ': property ' || property FROM serverproperties WHERE value LIKE '%"AET":"${RT}"%' ORDER BY 1`,
    );
    expect(rows.trim(), "the tenants added through REST, filed under one node's identifier").toBe('');
    const shared = await postgres.sql(postgres.database.database, 'SELECT name, value FROM multitenant_dicom_tenants ORDER BY 1');
    expect(shared.trim().split('\n'), 'the rows of the plugin\'s table').toEqual([
      `tenants|${JSON.stringify({ Servers: [{ AET: RT, Port: port, Labels: ['rt'] }] })}`,
    ]);
  }, TIMEOUT_MS);

  it("a study stored through node 2's RUNTIME_T is found through node 1's (and node 2's): exactly its instances, labelled rt", async () => {
    stored = await writeDataset(join(directory, 'runtime'), {
      prefix: 'cluster-runtime',
      patients: 1,
      studiesPerPatient: 1,
      seriesPerStudy: 1,
      instancesPerSeries: 3,
    });
    const files = stored.map((instance) => instance.path);
    expectStored(await storeAt(at(node2, port), files), files, "storescu through node 2's RUNTIME_T");
    const study = stored[0]!.studyInstanceUid;
    for (const node of nodes) {
      const studies = await findAt(at(node, port), 'STUDY', [`StudyInstanceUID=${study}`], `${node.name}'s RUNTIME_T`);
      expect(answered(studies, 'StudyInstanceUID'), `C-FIND STUDY through ${node.name}'s RUNTIME_T`).toEqual([study]);
      const images = await findAt(at(node, port), 'IMAGE', [`StudyInstanceUID=${study}`, 'SOPInstanceUID'], `${node.name}'s RUNTIME_T`);
      expect(answered(images, 'SOPInstanceUID'), `C-FIND IMAGE through ${node.name}'s RUNTIME_T`).toEqual(uidsOf(stored));
    }
    for (const instance of stored) {
      expect((await node1.orthanc.rest<string[]>('GET', `/instances/${orthancIds(instance).instance}/labels`)).body).toEqual(['rt']);
    }
  }, TIMEOUT_MS);

  it('a change through node 2 (another port, another label) is applied by node 1 within 10 s: the port moves, and what it stores carries both labels', async () => {
    movedPort = await freePort();
    const marks = logMarks();
    const sent = performance.now();
    const changed = await node2.orthanc.rest<Record<string, unknown>>('PUT', `${ROUTE}/${RT}`, { Port: movedPort, Labels: ['rt', 'rt2'] });
    expect(changed.status, `a change of the tenant node 1 created: ${JSON.stringify(changed.body)}`).toBe(200);
    expect(changed.body).toMatchObject({ AET: RT, Port: movedPort, Labels: ['rt', 'rt2'], State: 'Listening' });
    expect(await echo(node2, movedPort), "C-ECHO to node 2's RUNTIME_T on its new port").toBe('accepted');
    expect(await canConnect(port, node2.host), "node 2's old port").toBe(false);
    await expectFollowed('moved (new port open)', node1, movedPort, true, sent);
    await expectFollowed('moved (old port closed)', node1, port, false, sent);
    expect(await echo(node1, movedPort), "C-ECHO to node 1's RUNTIME_T on its new port").toBe('accepted');
    await expectApplied(node1, node2, marks);

    // Node 1 labels its stores with both labels now; under "All", the tenant sees only what carries both.
    const next = await writeInstance(join(directory, 'runtime'), {
      ...stored[0]!,
      path: undefined,
      sopInstanceUid: `${stored[0]!.seriesInstanceUid}.99`,
      instanceNumber: '99',
    });
    expectStored(await storeAt(at(node1, movedPort), [next.path]), [next.path], "storescu through node 1's RUNTIME_T");
    expect((await node2.orthanc.rest<string[]>('GET', `/instances/${orthancIds(next).instance}/labels`)).body.sort()).toEqual(['rt', 'rt2']);
    for (const node of nodes) {
      const images = await findAt(at(node, movedPort), 'IMAGE', [`StudyInstanceUID=${next.studyInstanceUid}`, 'SOPInstanceUID'], `${node.name}'s RUNTIME_T`);
      expect(answered(images, 'SOPInstanceUID'), `C-FIND IMAGE through ${node.name}'s RUNTIME_T`).toEqual([next.sopInstanceUid]);
    }
    stored.push(next);
  }, TIMEOUT_MS);

  it('DELETE through node 1 closes its port on node 2 within 10 s; node 2 logs it; the data stays', async () => {
    const marks = logMarks();
    const sent = performance.now();
    const deleted = await node1.orthanc.rest('DELETE', `${ROUTE}/${RT}`);
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
    expect(await canConnect(movedPort, node1.host), "node 1's port, once DELETE answered").toBe(false);
    await expectFollowed('deleted', node2, movedPort, false, sent);
    await expectApplied(node2, node1, marks);
    for (const instance of stored) {
      expect((await node2.orthanc.rest('GET', `/instances/${orthancIds(instance).instance}`)).status, 'the instances stay').toBe(200);
    }
  }, TIMEOUT_MS);
});

// ---------------------------------------------------------------------------------------

describe("another sender's part deleted, across nodes, from what DEL_B shares with DEL_A", () => {
  // The deletion fix (test/support/shared-patient.ts, deletion.test.ts on one node) across
  // nodes: DEL_A stores first, through node 1; DEL_B stores into the same patient, study or
  // series through node 2, whose plugin marks the patient "multitenant-mixed" in the shared
  // database. DEL_A's part is then deleted through node 2's or node 1's REST API: that
  // node's plugin sees the deletion and rebuilds the patient. Then both nodes must answer
  // DEL_B with DEL_B's values only, at every query level, and DEL_A with nothing.
  interface Scenario {
    key: string;
    title: string;
    shares: Shares;
    deleteLevel: 'studies' | 'series' | 'instances';
    /** The node (1 or 2) whose REST API deletes DEL_A's part. */
    deleteThrough: 1 | 2;
  }
  const SCENARIOS: Scenario[] = [
    { key: 'patient', title: "DEL_A's study deleted through node 2 from a patient shared with DEL_B", shares: 'patient', deleteLevel: 'studies', deleteThrough: 2 },
    { key: 'study', title: "DEL_A's series deleted through node 1 from a study shared with DEL_B", shares: 'study', deleteLevel: 'series', deleteThrough: 1 },
    { key: 'series', title: "DEL_A's instance deleted through node 2 from a series shared with DEL_B", shares: 'series', deleteLevel: 'instances', deleteThrough: 2 },
    { key: 'series-node1', title: "DEL_A's instance deleted through node 1 from a series shared with DEL_B", shares: 'series', deleteLevel: 'instances', deleteThrough: 1 },
  ];
  const timings: string[] = [];

  afterAll(() => {
    if (timings.length > 0) console.info(`cluster deletions, until marked and until rebuilt: ${timings.join('; ')}`);
  });

  const findThrough = (node: ClusterNode, tenant: 'DEL_A' | 'DEL_B'): TenantFind => (level, keys) => find(node, tenant, level, keys);
  const nodeNumber = (number: 1 | 2) => nodes[number - 1]!;

  for (const [index, scenario] of SCENARIOS.entries()) {
    describe(scenario.title, () => {
      let pair: SharingPair;
      let marked: number;

      it(`DEL_A stores through node 1, DEL_B into the same ${scenario.shares} through node 2: the patient gets "${MIXED}", which both nodes see`, async () => {
        pair = await writeSharingPair(join(directory, 'deletion', scenario.key), {
          root: `${uidRoot('cluster-deletion')}.${index + 1}`,
          patientId: `CL-DEL-${scenario.key}`,
          shares: scenario.shares,
        });
        expectStored(await store(node1, 'DEL_A', [pair.first.path]), [pair.first.path], "storescu through node 1's DEL_A");
        expectStored(await store(node2, 'DEL_B', [pair.second.path]), [pair.second.path], "storescu through node 2's DEL_B");
        marked = await waitUntil(`node 1 to see the patient of ${scenario.key} marked ${MIXED}`, () => isMarkedMixed(node1.orthanc, pair));
        expect(await isMarkedMixed(node2.orthanc, pair), `node 2: the patient marked ${MIXED}`).toBe(true);
      }, TIMEOUT_MS);

      it(`DEL_A's part deleted through node ${scenario.deleteThrough}'s REST API: the patient is rebuilt from DEL_B's instances (label "${MIXED}" removed)`, async () => {
        const deleting = nodeNumber(scenario.deleteThrough);
        const uri = deletionUri(pair.first, scenario.deleteLevel);
        const deleted = await deleting.orthanc.rest('DELETE', uri);
        expect(deleted.status, `${deleting.name}: DELETE ${uri}`).toBe(200);
        const rebuilt = await waitUntil(`node 1 to see the patient of ${scenario.key} rebuilt (label ${MIXED} removed)`, async () => !(await isMarkedMixed(node1.orthanc, pair)));
        timings.push(`${scenario.key}: ${(marked / 1000).toFixed(2)} s, ${(rebuilt / 1000).toFixed(2)} s`);
        expect(await isMarkedMixed(node2.orthanc, pair), `node 2: the patient still marked ${MIXED}`).toBe(false);
        expect(await instancesWithUid(node1, pair.first.sopInstanceUid), "DEL_A's instance").toEqual([]);
      }, TIMEOUT_MS);

      for (const number of [1, 2] as const) {
        it(`through node ${number}'s DEL_B, at every level: DEL_B's values only; DEL_B's own values match, the deleted values find nothing`, async () => {
          const node = nodeNumber(number);
          expect(await findingsThroughRemaining(findThrough(node, 'DEL_B'), pair, through(node, 'DEL_B'))).toEqual([]);
        }, TIMEOUT_MS);
      }

      it('through DEL_A, on either node, at every level: nothing', async () => {
        for (const each of nodes) {
          expect(await findingsThroughDeleted(findThrough(each, 'DEL_A'), pair, through(each, 'DEL_A'))).toEqual([]);
        }
      }, TIMEOUT_MS);
    });
  }
});
