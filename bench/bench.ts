// `npm run bench`: this plugin against the stock C++ plugin and Orthanc's own DICOM
// port, in one run, interleaved (stock, ours, core, stock, ...), on fresh storage for
// every workload that writes. Three more setups of this plugin: with its audit trail
// (ours+audit: store, find, move; metrics on, as in "ours"), with neither audit trail nor
// metrics (ours-bare: store, find, move) and with DICOM TLS on its tenants' ports
// (ours+tls: store and find, the clients with +tls). "ours-twin" (only when --setups
// names it) is "ours" again in a second process: the paired pair ours/ours-twin measures
// the bench's own bias, an A/A comparison whose ratios should be 1. Prints medians,
// spreads and ratios; writes the raw samples to bench/results/. Options: --quick (under
// 3 minutes), --disk (storage on disk instead of a tmpfs), --rounds N,
// --only startup,echo,store,find,move,paired, --setups stock,ours,..., --baseline PATH.so,
// --paired-rounds N, --paired-batch N, --paired-steps N.
// "paired": two setups side by side in alternating short rounds (see pairedWorkload).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { makeCertificate } from '../test/support/certificates.js';
import { writeDataset, writeInstance, type SyntheticInstance } from '../test/support/dataset.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const OURS = join(ROOT, 'build', 'libOrthancMultitenantDicom.so');
const STOCK = '/usr/share/orthanc/plugins/libMultitenantDicom.so';
const CLIENT_ENV = { ...process.env, TCP_NODELAY: '1' };

type Setup = 'stock' | 'ours' | 'ours+audit' | 'ours-bare' | 'ours+tls' | 'ours-twin' | 'core' | 'baseline';

const args = process.argv.slice(2);
const optionValue = (name: string) => (args.includes(name) ? String(args[args.indexOf(name) + 1]) : undefined);
const BASELINE = optionValue('--baseline');
const setupsArgument = optionValue('--setups')?.split(',');
const ALL_SETUPS: Setup[] = ['stock', 'ours', 'ours+audit', 'ours-bare', 'ours+tls', 'ours-twin', 'core', ...(BASELINE ? (['baseline'] as const) : [])];
const requested = (setup: Setup) => (setupsArgument === undefined ? setup !== 'ours-twin' : setupsArgument.includes(setup));
const SETUPS = ALL_SETUPS.filter((setup) => requested(setup) || setup === 'baseline');
const among = (setups: Setup[]) => SETUPS.filter((setup) => setups.includes(setup));
const COMPARED = among(['stock', 'ours', 'core', 'baseline']);
const isOurs = (setup: Setup) => setup.startsWith('ours') || setup === 'baseline';
const quick = args.includes('--quick');
const onDisk = args.includes('--disk');
const roundsArgument = args.indexOf('--rounds');
const ROUNDS = roundsArgument >= 0 ? Number(args[roundsArgument + 1]) : 3;
// --only startup,echo,store,find,move: a subset, to profile one workload (not a full run).
// --setups stock,ours,...: a subset of the setups. --baseline PATH: one more setup,
// "baseline", another build of this plugin (e.g. an earlier commit's) in ours' configuration.
const onlyArgument = args.indexOf('--only');
const ONLY = onlyArgument >= 0 ? new Set(String(args[onlyArgument + 1]).split(',')) : undefined;
const selected = (workload: 'startup' | 'echo' | 'store' | 'find' | 'move' | 'paired') => ONLY === undefined || ONLY.has(workload);
const SIZES = quick
  ? { storeInstances: 300, findStudies: 2000, findRepetitions: 20, moveInstances: 200, startups: 3, pairedRounds: 6 }
  : { storeInstances: 1000, findStudies: 10000, findRepetitions: 20, moveInstances: 500, startups: 5, pairedRounds: 16 };
// --paired-rounds N: more (or fewer) rounds of the paired workload than its size's.
const pairedRoundsArgument = args.indexOf('--paired-rounds');
if (pairedRoundsArgument >= 0) SIZES.pairedRounds = Number(args[pairedRoundsArgument + 1]);
// --paired-batch N: instances per paired store sample (a multiple of 4; 100 quick, 200 else).
const PAIRED_BATCH = Number(optionValue('--paired-batch') ?? (quick ? 100 : 200));
if (!(Number.isInteger(PAIRED_BATCH) && PAIRED_BATCH >= 4 && PAIRED_BATCH % 4 === 0)) throw new Error(`--paired-batch must be a multiple of 4, got ${PAIRED_BATCH}`);
// --paired-steps N: each paired store sample is taken in N steps that alternate between the
// two setups (pairedSamples); 8 unless given.
const PAIRED_STEPS = Number(optionValue('--paired-steps') ?? 8);
if (!(Number.isInteger(PAIRED_STEPS) && PAIRED_STEPS >= 1)) throw new Error(`--paired-steps must be a positive integer, got ${PAIRED_STEPS}`);

// ---------------------------------------------------------------------------------------
// Orthanc processes

interface Tenant {
  aet: string;
  port: number;
  labels: string[];
}

interface Launched {
  setup: Setup;
  pid: number;
  httpPort: number;
  dicomPort: number;
  tenants: Tenant[];
  directory: string;
  kill(): Promise<void>;
}

let nextPort = 21000;
const port = () => nextPort++;

async function waitForPort(portNumber: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((done) => {
      const socket = createConnection({ host: '127.0.0.1', port: portNumber }, () => {
        socket.destroy();
        done(true);
      });
      socket.on('error', () => done(false));
    });
    if (open) return;
    await sleep(5);
  }
  throw new Error(`port ${portNumber} did not open`);
}

async function launch(
  setup: Setup,
  directory: string,
  tenantLabels: string[][] = [['tenant-a'], ['tenant-b']],
  extra: Record<string, unknown> = {},
): Promise<Launched & { startupMs: number }> {
  const httpPort = port();
  const dicomPort = port();
  const tenants = tenantLabels.map((labels, index) => ({ aet: `TENANT_${String.fromCharCode(65 + index)}`, port: port(), labels }));
  const configuration = {
    Name: `bench-${setup}`,
    HttpPort: httpPort,
    DicomPort: dicomPort,
    StorageDirectory: join(directory, 'storage'),
    IndexDirectory: join(directory, 'storage'),
    RemoteAccessAllowed: true,
    AuthenticationEnabled: false,
    DicomAlwaysAllowFind: true,
    DicomAlwaysAllowMove: true,
    DicomModalities: { destination: { AET: 'DEST', Host: '127.0.0.1', Port: 20999 } },
    Plugins: setup === 'baseline' ? [resolve(BASELINE!)] : isOurs(setup) ? [OURS] : setup === 'stock' ? [STOCK] : [],
    ...(setup === 'core'
      ? {}
      : {
          MultitenantDicom: {
            Servers: tenants.map((t) => ({ AET: t.aet, Port: t.port, Labels: t.labels })),
            ...(setup === 'ours+audit' && { AuditLog: { Path: join(directory, 'audit.jsonl') } }),
            ...(setup === 'ours-bare' && { Metrics: { Enabled: false } }),
          },
        }),
    ...(setup === 'ours+tls' && tlsConfiguration()),
    ...extra,
  };
  await mkdir(directory, { recursive: true });
  const configurationPath = join(directory, 'orthanc.json');
  await writeFile(configurationPath, JSON.stringify(configuration));
  const started = performance.now();
  const child: ChildProcess = spawn('Orthanc', [configurationPath], { stdio: 'ignore', env: CLIENT_ENV });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const deadline = Date.now() + 60_000;
  await waitForHttp(httpPort, deadline);
  for (const tenant of setup === 'core' ? [] : tenants) await waitForPort(tenant.port, deadline);
  const startupMs = performance.now() - started;
  return {
    setup,
    pid: child.pid!,
    httpPort,
    dicomPort,
    tenants,
    directory,
    startupMs,
    async kill() {
      child.kill('SIGKILL'); // fresh storage every time: no need for a clean stop
      await exited;
    },
  };
}

async function waitForHttp(httpPort: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${httpPort}/system`)).ok) return;
    } catch {
      // not yet
    }
    await sleep(5);
  }
  throw new Error(`Orthanc's HTTP port ${httpPort} did not open`);
}

async function rest<T>(orthanc: Launched, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${orthanc.httpPort}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

/** The CPU time (user and system, every thread) the process has used. */
async function cpuMilliseconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime and stime, fields 14 and 15 of proc(5)
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

const CLOCK_TICKS_PER_SECOND = 100; // sysconf(_SC_CLK_TCK) on Linux

async function rssMegabytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kilobytes = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return kilobytes / 1024;
}

// DICOM TLS (ours+tls): one certificate authority signs Orthanc's certificate and the
// bench's client certificate; every tenant requires a trusted client certificate.
let tls: { orthanc: { key: string; crt: string }; client: { key: string; crt: string }; ca: string } | undefined;

async function makeTlsFiles(): Promise<void> {
  const directory = join(workDirectory, 'tls');
  await mkdir(directory);
  const ca = await makeCertificate(directory, 'bench-ca');
  tls = { orthanc: await makeCertificate(directory, 'orthanc', 'bench-ca'), client: await makeCertificate(directory, 'client', 'bench-ca'), ca: ca.crt };
}

function tlsConfiguration(): Record<string, unknown> {
  return {
    DicomTlsEnabled: true,
    DicomTlsCertificate: tls!.orthanc.crt,
    DicomTlsPrivateKey: tls!.orthanc.key,
    DicomTlsTrustedCertificates: tls!.ca,
    DicomTlsRemoteCertificateRequired: true,
  };
}

/** The arguments a DCMTK client needs to reach `setup`'s tenants. */
function clientArgs(setup: Setup): string[] {
  return setup === 'ours+tls' ? ['+tls', tls!.client.key, tls!.client.crt, '+cf', tls!.ca] : [];
}

/** Where the target's DICOM endpoint is: tenant A for the plugins, the main port for the core. */
function endpoint(orthanc: Launched, tenant = 0): { aet: string; port: number } {
  return orthanc.setup === 'core' ? { aet: 'ORTHANC', port: orthanc.dicomPort } : orthanc.tenants[tenant]!;
}

// ---------------------------------------------------------------------------------------
// Samples

interface Sample {
  workload: string;
  setup: Setup;
  round: number;
  value: number;
  unit: string;
  valid: boolean;
  note?: string;
  /** Paired samples: the pair ("ours+audit/ours-bare") whose alternating rounds took it; a setup may be in several. */
  pair?: string;
}

const samples: Sample[] = [];
let workDirectory = '';

function record(sample: Sample): void {
  samples.push(sample);
  const flag = sample.valid ? '' : `  INVALID (${sample.note ?? ''})`;
  console.log(`  ${sample.workload.padEnd(28)} ${sample.setup.padEnd(6)} round ${sample.round}: ${sample.value.toFixed(2)} ${sample.unit}${flag}`);
}

/** Each round runs the setups in turn, starting with a different one every round. */
function interleaved(round: number, setups: Setup[]): Setup[] {
  return setups.map((_, index) => setups[(index + round) % setups.length]!);
}

async function fresh(name: string): Promise<string> {
  return mkdtemp(join(workDirectory, `${name}-`));
}

// ---------------------------------------------------------------------------------------
// Workloads

async function storeWorkload(files: SyntheticInstance[], associations: number, name: string): Promise<void> {
  const megabytes = (await Promise.all(files.map((file) => stat(file.path)))).reduce((sum, s) => sum + s.size, 0) / 1e6;
  console.log(`\n${name}: ${files.length} instances (${megabytes.toFixed(1)} MB) over ${associations} association(s)`);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const setup of interleaved(round, SETUPS)) {
      const orthanc = await launch(setup, await fresh(name));
      const cpuBefore = await cpuMilliseconds(orthanc.pid);
      const started = performance.now();
      await storeThrough(orthanc, files, associations);
      const seconds = (performance.now() - started) / 1000;
      const cpu = (await cpuMilliseconds(orthanc.pid)) - cpuBefore;
      const check = await verifyStored(orthanc, files.length);
      const rss = await rssMegabytes(orthanc.pid);
      record({ workload: `${name}`, setup, round, value: files.length / seconds, unit: 'instances/s', ...check });
      record({ workload: `${name} MB/s`, setup, round, value: megabytes / seconds, unit: 'MB/s', ...check });
      record({ workload: `Orthanc CPU per instance, ${name}`, setup, round, value: cpu / files.length, unit: 'ms', valid: true });
      record({ workload: `memory after ${name}`, setup, round, value: rss, unit: 'MB', valid: true });
      await orthanc.kill();
      await rm(orthanc.directory, { recursive: true, force: true });
    }
  }
}

/** Every instance stored, and, through a tenant, labelled. */
async function verifyStored(orthanc: Launched, expected: number, labelledByTenantA = true): Promise<{ valid: boolean; note?: string }> {
  const statistics = await rest<{ CountInstances: number }>(orthanc, 'GET', '/statistics');
  if (statistics.CountInstances !== expected) return { valid: false, note: `${statistics.CountInstances} of ${expected} stored` };
  if (orthanc.setup === 'core' || !labelledByTenantA) return { valid: true };
  const labelled = await rest<string[]>(orthanc, 'POST', '/tools/find', {
    Level: 'Instance',
    Query: {},
    Labels: orthanc.tenants[0]!.labels,
    LabelsConstraint: 'All',
  });
  return labelled.length === expected ? { valid: true } : { valid: false, note: `${labelled.length} of ${expected} labelled` };
}

interface FindQuery {
  name: string;
  keys: string[];
  expected: (setup: Setup) => number;
}

interface FindIndex {
  /** A copy of Orthanc's storage with every study stored through this plugin's tenants. */
  storage: string;
  instances: SyntheticInstance[];
}

let findIndex: Promise<FindIndex> | undefined;

/** Built once per run (find and paired workloads share it): half the studies through tenant A, half through B. */
function buildFindIndex(): Promise<FindIndex> {
  findIndex ??= (async () => {
    const studies = SIZES.findStudies;
    console.log(`\nfind index: ${studies} studies, half through tenant A, half through tenant B`);
    const dataDirectory = join(workDirectory, 'find-data');
    const instances: SyntheticInstance[] = [];
    const years = 10;
    let next = 0;
    const worker = async () => {
      while (next < studies) {
        const index = next++;
        // Tenant A holds the even studies, B the odd ones: both get every year.
        const year = 2015 + (Math.floor(index / 2) % years);
        instances[index] = await writeInstance(dataDirectory, {
          sopInstanceUid: `1.2.826.0.1.3680043.10.1234.900.${index}.1.1`,
          studyInstanceUid: `1.2.826.0.1.3680043.10.1234.900.${index}`,
          seriesInstanceUid: `1.2.826.0.1.3680043.10.1234.900.${index}.1`,
          patientId: `BENCH${index}`,
          patientName: `BENCH^P${index}`,
          studyDate: `${year}${String(1 + (index % 12)).padStart(2, '0')}15`,
          accessionNumber: `ACC${index}`,
          modality: 'CT',
        });
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));

    // Stored once through this plugin's tenants (labels as any tenant store writes them),
    // then copied for each setup: C-FIND does not write.
    const template = await launch('ours', join(workDirectory, 'find-template'));
    const halves = [instances.filter((_, i) => i % 2 === 0), instances.filter((_, i) => i % 2 === 1)];
    await Promise.all(
      halves.map((half, tenant) =>
        run('storescu', ['-aet', 'BENCH', '-aec', template.tenants[tenant]!.aet, '127.0.0.1', String(template.tenants[tenant]!.port), ...half.map((f) => f.path)], {
          env: CLIENT_ENV,
          maxBuffer: 256 * 1024 * 1024,
        }),
      ),
    );
    const stored = await rest<{ CountStudies: number }>(template, 'GET', '/statistics');
    if (stored.CountStudies !== studies) throw new Error(`the find index holds ${stored.CountStudies} of ${studies} studies`);
    await template.kill();
    return { storage: join(workDirectory, 'find-template', 'storage'), instances };
  })();
  return findIndex;
}

/** A fresh Orthanc of `setup` on a copy of the find index. */
async function launchOnFindIndex(setup: Setup): Promise<Launched> {
  const { storage } = await buildFindIndex();
  const directory = await fresh(`find-${setup}`);
  await cp(storage, join(directory, 'storage'), { recursive: true });
  return launch(setup, directory);
}

async function findWorkload(): Promise<void> {
  const studies = SIZES.findStudies;
  const years = 10;
  const specs = Array.from({ length: studies }, (_, index) => index);
  const { instances } = await buildFindIndex();
  console.log(`\nfind-${studies}: C-FIND at STUDY level through tenant A`);

  const half = studies / 2;
  const inTenantA = (predicate: (index: number) => boolean) => specs.filter((i) => i % 2 === 0 && predicate(i)).length;
  const inAll = (predicate: (index: number) => boolean) => specs.filter(predicate).length;
  const exact = instances[2]!.studyInstanceUid; // one of tenant A's studies
  const dateRange = (index: number) => 2015 + (Math.floor(index / 2) % years) === 2020;
  const queries: FindQuery[] = [
    { name: 'universal', keys: [], expected: (setup) => (setup === 'core' ? studies : half) },
    {
      name: 'PatientName wildcard',
      keys: ['PatientName=BENCH^P1??'],
      expected: (setup) => (setup === 'core' ? inAll : inTenantA)((i) => /^BENCH\^P1\d\d$/.test(`BENCH^P${i}`)),
    },
    { name: 'exact StudyInstanceUID', keys: [`StudyInstanceUID=${exact}`], expected: () => 1 },
    { name: 'StudyDate range', keys: ['StudyDate=20200101-20201231'], expected: (setup) => (setup === 'core' ? inAll : inTenantA)(dateRange) },
  ];

  const running = new Map<Setup, Launched>();
  for (const setup of SETUPS) running.set(setup, await launchOnFindIndex(setup));
  for (const query of queries) {
    console.log(`  query: ${query.name} (${COMPARED.map((s) => `${s} ${query.expected(s)} answers`).join(', ')})`);
    const keys = ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientName', 'StudyDate', ...query.keys].flatMap((key) => ['-k', key]);
    for (let repetition = 1; repetition <= SIZES.findRepetitions; repetition++) {
      for (const setup of interleaved(repetition, SETUPS)) {
        const orthanc = running.get(setup)!;
        const target = endpoint(orthanc);
        const started = performance.now();
        const { stdout, stderr } = await run('findscu', [...clientArgs(setup), '-v', '-S', '-aet', 'BENCH', '-aec', target.aet, ...keys, '127.0.0.1', String(target.port)], {
          env: CLIENT_ENV,
          maxBuffer: 256 * 1024 * 1024,
        });
        const ms = performance.now() - started;
        const answers = (`${stdout}${stderr}`.match(/Find Response: \d+ \(Pending\)/g) ?? []).length;
        const valid = answers === query.expected(setup);
        samples.push({ workload: `find ${query.name}`, setup, round: repetition, value: ms, unit: 'ms', valid, ...(valid ? {} : { note: `${answers} answers` }) });
      }
    }
    // The same query repeated in one association: the query's own cost, without the
    // client's start and the association (which the figure above includes).
    for (let round = 1; round <= ROUNDS; round++) {
      for (const setup of interleaved(round, SETUPS)) {
        const target = endpoint(running.get(setup)!);
        const repeated = SIZES.findRepetitions;
        const started = performance.now();
        const { stdout, stderr } = await run('findscu', [...clientArgs(setup), '-v', '-S', '--repeat', String(repeated), '-aet', 'BENCH', '-aec', target.aet, ...keys, '127.0.0.1', String(target.port)], {
          env: CLIENT_ENV,
          maxBuffer: 256 * 1024 * 1024,
        });
        const ms = (performance.now() - started) / repeated;
        const answers = (`${stdout}${stderr}`.match(/Find Response: \d+ \(Pending\)/g) ?? []).length;
        const valid = answers === repeated * query.expected(setup);
        const workload = `find ${query.name}, ${repeated} in one association, per query`;
        samples.push({ workload, setup, round, value: ms, unit: 'ms', valid, ...(valid ? {} : { note: `${answers} answers` }) });
      }
    }
  }
  for (const orthanc of running.values()) await orthanc.kill();
}

const MOVE_SETUPS = among(['stock', 'ours', 'ours+audit', 'ours-bare', 'core', 'baseline']);

async function moveWorkload(files: SyntheticInstance[]): Promise<void> {
  console.log(`\nmove-${files.length}: one study of ${files.length} instances, C-MOVE to a storescp destination`);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const setup of interleaved(round, MOVE_SETUPS)) {
      const orthanc = await launch(setup, await fresh('move'));
      const target = endpoint(orthanc);
      await run('storescu', ['-aet', 'BENCH', '-aec', target.aet, '127.0.0.1', String(target.port), ...files.map((f) => f.path)], {
        env: CLIENT_ENV,
        maxBuffer: 64 * 1024 * 1024,
      });
      const received = await fresh('received');
      const destination = spawn('storescp', ['-aet', 'DEST', '-od', received, '20999'], { stdio: 'ignore', env: CLIENT_ENV });
      await waitForPort(20999, Date.now() + 10_000);
      const started = performance.now();
      await run(
        'movescu',
        ['-S', '-aet', 'BENCH', '-aec', target.aet, '-aem', 'DEST', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${files[0]!.studyInstanceUid}`, '127.0.0.1', String(target.port)],
        { env: CLIENT_ENV },
      );
      const seconds = (performance.now() - started) / 1000;
      const arrived = (await readdir(received)).length;
      destination.kill('SIGKILL');
      await new Promise((done) => destination.once('exit', done));
      const valid = arrived === files.length;
      record({ workload: `move-${files.length}`, setup, round, value: files.length / seconds, unit: 'instances/s', valid, ...(valid ? {} : { note: `${arrived} arrived` }) });
      await orthanc.kill();
      await rm(orthanc.directory, { recursive: true, force: true });
      await rm(received, { recursive: true, force: true });
    }
  }
}

/** One association and one C-ECHO, as a client sees it: the fixed cost every request pays. */
async function echoWorkload(): Promise<void> {
  console.log(`\necho: ${SIZES.findRepetitions} associations with one C-ECHO each`);
  const running = new Map<Setup, Launched>();
  for (const setup of COMPARED) running.set(setup, await launch(setup, await fresh(`echo-${setup}`)));
  for (let repetition = 1; repetition <= SIZES.findRepetitions; repetition++) {
    for (const setup of interleaved(repetition, COMPARED)) {
      const target = endpoint(running.get(setup)!);
      const started = performance.now();
      await run('echoscu', ['-aet', 'BENCH', '-aec', target.aet, '127.0.0.1', String(target.port)], { env: CLIENT_ENV });
      samples.push({ workload: 'echo', setup, round: repetition, value: performance.now() - started, unit: 'ms', valid: true });
    }
  }
  for (const orthanc of running.values()) await orthanc.kill();
}

async function startupAndIdleMemory(): Promise<void> {
  console.log(`\nstartup and idle memory: ${SIZES.startups} launches of each`);
  for (let round = 1; round <= SIZES.startups; round++) {
    for (const setup of interleaved(round, COMPARED)) {
      const orthanc = await launch(setup, await fresh('startup'));
      record({ workload: 'startup', setup, round, value: orthanc.startupMs, unit: 'ms', valid: true });
      await sleep(300);
      record({ workload: 'memory idle', setup, round, value: await rssMegabytes(orthanc.pid), unit: 'MB', valid: true });
      await orthanc.kill();
      await rm(orthanc.directory, { recursive: true, force: true });
    }
  }
}

// ---------------------------------------------------------------------------------------
// Paired costs: two setups alive side by side, in rounds. Within a round each workload's
// sample of A and of B is taken in short steps that alternate between them (A B, B A, ...):
// this machine's speed swings by up to 50% within seconds (other VMs on its host), and
// steps a fraction of a second apart see the same swings. Each round's ratio compares like
// with like: for a store, 8 steps take the spread of a round's ratio from ±10-16% to ±5%
// (2026-12-07, ours/ours-twin). Orthanc's CPU time per operation is steadier than
// throughput. Reported per workload: the geometric mean of the per-round ratios A/B with
// its 95% confidence interval (Student's t on the log ratios).

const PAIRS: [Setup, Setup][] = (
  [
    ['ours+audit', 'ours-bare'],
    ['ours', 'ours-twin'],
    ['ours', 'baseline'],
    // The earlier build had no metrics: this pair leaves the operator's view's cost out.
    ['ours-bare', 'baseline'],
  ] as [Setup, Setup][]
).filter(([a, b]) => SETUPS.includes(a) && SETUPS.includes(b));

// The plugin names its threads (native/constants.h): its JavaScript thread (decisions,
// metrics, audit trail) and the tenants' DICOM threads. The rest is Orthanc's own threads
// and libuv's pool (the in-process REST calls). Builds before the names (the baseline)
// have only the whole process's figure.
const THREAD_GROUPS: Record<string, string> = { 'mtd-javascript': 'JavaScript thread', 'mtd-dicom': 'DICOM threads' };
const OTHER_THREADS = 'other threads';
const GROUP_UNIT = 'ms (thread group)';

/** CPU time of every live thread of the process, in ms, from the scheduler's nanosecond counters: in all and by thread group (empty: no named thread). */
async function threadsCpuMilliseconds(pid: number): Promise<{ all: number; groups: Map<string, number> }> {
  let all = 0;
  const groups = new Map<string, number>();
  for (const task of await readdir(`/proc/${pid}/task`)) {
    try {
      const [schedstat, name] = await Promise.all([
        readFile(`/proc/${pid}/task/${task}/schedstat`, 'utf8'),
        readFile(`/proc/${pid}/task/${task}/comm`, 'utf8'),
      ]);
      const milliseconds = Number(schedstat.split(' ')[0]) / 1e6;
      all += milliseconds;
      // A thread a named one starts without naming it inherits the name: it counts with it.
      const group = THREAD_GROUPS[name.trim()] ?? OTHER_THREADS;
      groups.set(group, (groups.get(group) ?? 0) + milliseconds);
    } catch {
      // the thread ended meanwhile
    }
  }
  const named = Object.values(THREAD_GROUPS).some((group) => groups.has(group));
  return { all, groups: named ? groups : new Map() };
}

// The process's CPU time in user and in kernel mode (the kernel's is mostly writing the
// storage and its page faults, where a VM's memory makes the most noise), in clock ticks
// of 10 ms: only for samples far longer than a tick.
const CLOCK_TICK_UNIT = 'ms (10 ms ticks)';
async function userAndSystemMilliseconds(pid: number): Promise<{ user: number; system: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3 (state) on
  return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
}

const REPORTS_SETTLED_MS = 250;

interface Usage {
  elapsed: number;
  all: number;
  user: number;
  system: number;
  groups: Map<string, number>;
}

/** Runs `operation` on `orthanc`: its wall time and Orthanc's CPU time meanwhile (in all, by mode and by thread group). */
async function measured<T>(orthanc: Launched, operation: () => Promise<T>): Promise<{ usage: Usage; result: T }> {
  const [cpuBefore, modesBefore] = await Promise.all([threadsCpuMilliseconds(orthanc.pid), userAndSystemMilliseconds(orthanc.pid)]);
  const started = performance.now();
  const result = await operation();
  const elapsed = performance.now() - started;
  // The plugin reports operations to its JavaScript thread at the next beat
  // (kNotificationDelay, 100 ms): their handling (metrics, audit trail) belongs to this step.
  await sleep(REPORTS_SETTLED_MS);
  const [cpuAfter, modesAfter] = await Promise.all([threadsCpuMilliseconds(orthanc.pid), userAndSystemMilliseconds(orthanc.pid)]);
  const groups = new Map<string, number>();
  for (const group of [...Object.values(THREAD_GROUPS), OTHER_THREADS]) {
    if (!cpuBefore.groups.has(group) && !cpuAfter.groups.has(group)) continue;
    groups.set(group, (cpuAfter.groups.get(group) ?? 0) - (cpuBefore.groups.get(group) ?? 0));
  }
  const usage = { elapsed, all: cpuAfter.all - cpuBefore.all, user: modesAfter.user - modesBefore.user, system: modesAfter.system - modesBefore.system, groups };
  return { usage, result };
}

function addUsage(total: Usage | undefined, usage: Usage): Usage {
  if (total === undefined) return usage;
  const groups = new Map(total.groups);
  for (const [group, value] of usage.groups) groups.set(group, (groups.get(group) ?? 0) + value);
  return { elapsed: total.elapsed + usage.elapsed, all: total.all + usage.all, user: total.user + usage.user, system: total.system + usage.system, groups };
}

type Check = { valid: boolean; note?: string };

/**
 * One sample of `workload` for each of the pair, taken in steps that alternate between
 * them (A B, B A, ...): this machine's speed swings by up to 50% within seconds (other
 * VMs on its host), and steps of a fraction of a second apart see the same swings. Each
 * records its wall time and Orthanc's CPU time per unit, summed over its steps.
 */
async function pairedSamples(
  workload: string,
  order: Launched[],
  pair: string,
  round: number,
  units: number,
  steps: ((orthanc: Launched) => Promise<Check>)[],
): Promise<void> {
  const totals = new Map<Launched, { usage: Usage | undefined; check: Check }>(order.map((orthanc) => [orthanc, { usage: undefined, check: { valid: true } }]));
  for (const [index, step] of steps.entries()) {
    for (const orthanc of index % 2 === 0 ? order : [...order].reverse()) {
      const { usage, result } = await measured(orthanc, () => step(orthanc));
      const total = totals.get(orthanc)!;
      total.usage = addUsage(total.usage, usage);
      if (!result.valid && total.check.valid) total.check = result;
    }
  }
  for (const [orthanc, { usage, check }] of totals) {
    const sample = (figure: string, value: number, unit = 'ms') =>
      samples.push({ workload: `paired ${workload}, ${figure}`, setup: orthanc.setup, pair, round, value: value / units, unit, ...check });
    sample('time per unit', usage!.elapsed);
    sample('Orthanc CPU per unit', usage!.all);
    sample('Orthanc user CPU per unit', usage!.user, CLOCK_TICK_UNIT);
    sample('Orthanc system CPU per unit', usage!.system, CLOCK_TICK_UNIT);
    for (const [group, value] of usage!.groups) sample(`${group} CPU per unit`, value, GROUP_UNIT);
  }
}

// A C-MOVE sample: this many moves of the same study, in alternating steps.
const MOVES_PER_SAMPLE = 4;

async function pairedWorkload([first, second]: [Setup, Setup]): Promise<void> {
  const rounds = SIZES.pairedRounds;
  const batch = PAIRED_BATCH;
  console.log(
    `\npaired ${first} / ${second}: ${rounds} rounds (store ${batch} instances over 1 and 4 associations in ${PAIRED_STEPS} steps, ` +
      `20 C-FIND, ${MOVES_PER_SAMPLE} C-MOVE of 100; each in steps alternating between the two)`,
  );
  // Every round stores new instances (two batches: one per number of associations),
  // written before the round and removed after it.
  const batchFiles = (index: number, instances: number, patients = 2) =>
    writeDataset(join(workDirectory, `paired-data-${index}`), {
      prefix: `1.2.826.0.1.3680043.10.1234.600.${index}`,
      patients,
      studiesPerPatient: 1,
      seriesPerStudy: 2,
      instancesPerSeries: instances / (2 * patients),
      pixels: { rows: 256, columns: 256 },
    });
  const moveFiles = await batchFiles(0, 100, 1); // one study
  const pairName = `${first}/${second}`;
  const pair = [await launchOnFindIndex(first), await launchOnFindIndex(second)];
  const received = await fresh('paired-received');
  const destination = spawn('storescp', ['-aet', 'DEST', '-od', received, '20999'], { stdio: 'ignore', env: CLIENT_ENV });
  let stored = moveFiles.length;
  try {
    await waitForPort(20999, Date.now() + 10_000);
    for (const orthanc of pair) await storeThrough(orthanc, moveFiles, 1);
    const { instances } = await buildFindIndex();
    const findKeys = [
      [`StudyInstanceUID=${instances[2]!.studyInstanceUid}`],
      ['PatientName=BENCH^P1??'],
      ['StudyDate=20200101-20201231'],
      [],
    ];
    const findSteps = Array.from({ length: 5 }, () => findKeys.map((keys) => async (orthanc: Launched) => {
      await findThrough(orthanc, keys);
      return { valid: true };
    })).flat();
    const move = async (orthanc: Launched) => {
      await run('movescu', ['-S', '-aet', 'BENCH', '-aec', orthanc.tenants[0]!.aet, '-aem', 'DEST', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${moveFiles[0]!.studyInstanceUid}`, '127.0.0.1', String(orthanc.tenants[0]!.port)], { env: CLIENT_ENV });
      const arrived = (await readdir(received)).length;
      await Promise.all((await readdir(received)).map((file) => rm(join(received, file))));
      return arrived === moveFiles.length ? { valid: true } : { valid: false, note: `${arrived} of ${moveFiles.length} arrived` };
    };
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? pair : [...pair].reverse();
      const storeBatches = [await batchFiles(2 * round - 1, batch), await batchFiles(2 * round, batch)];
      stored += storeBatches[0]!.length + storeBatches[1]!.length;
      for (const [index, associations] of [1, 4].entries()) {
        const files = storeBatches[index]!;
        const chunks = Array.from({ length: PAIRED_STEPS }, (_, step) => files.filter((_, i) => i % PAIRED_STEPS === step));
        const storeSteps = chunks.map((chunk) => async (orthanc: Launched) => {
          await storeThrough(orthanc, chunk, associations);
          return { valid: true };
        });
        await pairedSamples(`store ${associations} association(s)`, order, pairName, round, files.length, storeSteps);
      }
      await pairedSamples('C-FIND (4 queries x 5)', order, pairName, round, findSteps.length, findSteps);
      await pairedSamples(`C-MOVE of ${moveFiles.length}`, order, pairName, round, MOVES_PER_SAMPLE * moveFiles.length, Array(MOVES_PER_SAMPLE).fill(move));
      for (const index of [2 * round - 1, 2 * round]) await rm(join(workDirectory, `paired-data-${index}`), { recursive: true, force: true });
    }
    for (const orthanc of pair) {
      const check = await verifyStored(orthanc, SIZES.findStudies + stored, false);
      if (!check.valid) samples.push({ workload: 'paired store, all stored', setup: orthanc.setup, round: 0, value: 0, unit: '', ...check });
    }
  } finally {
    destination.kill('SIGKILL');
    for (const orthanc of pair) {
      await orthanc.kill();
      await rm(orthanc.directory, { recursive: true, force: true }); // many GB after many rounds
    }
  }
}

/** Stores `files` through the setup's endpoint over `associations` parallel associations. */
async function storeThrough(orthanc: Launched, files: SyntheticInstance[], associations: number): Promise<void> {
  const target = endpoint(orthanc);
  const groups = Array.from({ length: associations }, (_, index) => files.filter((_, i) => i % associations === index));
  await Promise.all(
    groups.map((group) =>
      run('storescu', [...clientArgs(orthanc.setup), '-aet', 'BENCH', '-aec', target.aet, '127.0.0.1', String(target.port), ...group.map((f) => f.path)], {
        env: CLIENT_ENV,
        maxBuffer: 64 * 1024 * 1024,
      }),
    ),
  );
}

async function findThrough(orthanc: Launched, keys: string[]): Promise<void> {
  const target = endpoint(orthanc);
  const arguments_ = ['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', 'PatientName', 'StudyDate', ...keys].flatMap((key) => ['-k', key]);
  await run('findscu', ['-S', '-aet', 'BENCH', '-aec', target.aet, ...arguments_, '127.0.0.1', String(target.port)], { env: CLIENT_ENV, maxBuffer: 256 * 1024 * 1024 });
}

const T_975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

/** The geometric mean of the per-round ratios a/b of `workload`, with its 95% confidence interval. */
function pairedRatio(workload: string, a: Setup, b: Setup): { mean: number; low: number; high: number; n: number } | undefined {
  const pair = `${a}/${b}`;
  const logs = samples
    .filter((sample) => sample.workload === workload && sample.pair === pair && sample.setup === a && sample.valid)
    .map((sample) => {
      const other = samples.find((s) => s.workload === workload && s.pair === pair && s.setup === b && s.round === sample.round && s.valid);
      // A figure counted in clock ticks may be 0 in a short sample: no ratio then.
      return other === undefined || !(sample.value > 0 && other.value > 0) ? undefined : Math.log(sample.value / other.value);
    })
    .filter((value): value is number => value !== undefined);
  const n = logs.length;
  if (n < 2) return undefined;
  const mean = logs.reduce((sum, value) => sum + value, 0) / n;
  const deviation = Math.sqrt(logs.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (n - 1));
  const margin = (T_975[Math.min(n - 2, T_975.length - 1)] ?? 1.96) * (deviation / Math.sqrt(n));
  return { mean: Math.exp(mean), low: Math.exp(mean - margin), high: Math.exp(mean + margin), n };
}

function pairedReport(): string {
  if (PAIRS.length === 0) return '';
  const workloads = [...new Set(samples.filter((s) => s.workload.startsWith('paired ') && (s.unit === 'ms' || s.unit === CLOCK_TICK_UNIT)).map((s) => s.workload))];
  if (workloads.length === 0) return '';
  const lines = [
    `| paired workload | ${PAIRS.map(([a, b]) => `${a}/${b} (95% CI, rounds)`).join(' | ')} |`,
    `|${' --- |'.repeat(PAIRS.length + 1)}`,
  ];
  for (const workload of workloads) {
    const cells = PAIRS.map(([a, b]) => {
      const ratio = pairedRatio(workload, a, b);
      return ratio === undefined ? '-' : `${ratio.mean.toFixed(3)} (${ratio.low.toFixed(3)}-${ratio.high.toFixed(3)}, ${ratio.n})`;
    });
    lines.push(`| ${workload.slice('paired '.length)} | ${cells.join(' | ')} |`);
  }
  return [lines.join('\n'), threadGroupsReport()].filter((part) => part !== '').join('\n\n');
}

/**
 * Where A's Orthanc CPU per unit differs from B's: the difference of the means of each
 * thread group, in µs per unit and as a share of B's whole Orthanc CPU per unit. A change
 * that lives on one group (the audit trail on the JavaScript thread) shows there without
 * the other groups' round-to-round spread.
 */
function threadGroupsReport(): string {
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  const groups = [...Object.values(THREAD_GROUPS), OTHER_THREADS];
  const values = (workload: string, pair: string, setup: Setup, figure: string) =>
    samples.filter((s) => s.workload === `${workload}, ${figure}` && s.pair === pair && s.setup === setup && s.valid).map((s) => s.value);
  const suffix = ', Orthanc CPU per unit';
  const workloads = [...new Set(samples.filter((s) => s.workload.startsWith('paired ') && s.workload.endsWith(suffix)).map((s) => s.workload.slice(0, -suffix.length)))];
  const lines: string[] = [];
  for (const [a, b] of PAIRS) {
    const pair = `${a}/${b}`;
    for (const workload of workloads) {
      const wholeB = values(workload, pair, b, 'Orthanc CPU per unit');
      const differences = groups.map((group) => {
        const [ofA, ofB] = [values(workload, pair, a, `${group} CPU per unit`), values(workload, pair, b, `${group} CPU per unit`)];
        return ofA.length === 0 || ofB.length === 0 ? undefined : mean(ofA) - mean(ofB);
      });
      if (wholeB.length === 0 || differences.every((difference) => difference === undefined)) continue;
      const cells = differences.map((difference) =>
        difference === undefined ? '-' : `${(difference * 1000).toFixed(1)} (${((100 * difference) / mean(wholeB)).toFixed(1)}%)`,
      );
      lines.push(`| ${pair} | ${workload.slice('paired '.length)} | ${(mean(wholeB) * 1000).toFixed(0)} | ${cells.join(' | ')} |`);
    }
  }
  if (lines.length === 0) return '';
  return [
    `| pair A/B | paired workload | B's Orthanc CPU, µs per unit | ${groups.map((group) => `A − B, ${group} (share of B's CPU)`).join(' | ')} |`,
    `|${' --- |'.repeat(groups.length + 3)}`,
    ...lines,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------
// Report

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The median of per-round ratios of `setup` to `other`. */
function ratio(workload: string, setup: Setup, other: Setup): number | undefined {
  const ours = samples.filter((s) => s.workload === workload && s.setup === setup && s.valid);
  const ratios = ours
    .map((sample) => {
      const match = samples.find((s) => s.workload === workload && s.setup === other && s.round === sample.round && s.valid);
      return match === undefined ? undefined : sample.value / match.value;
    })
    .filter((value): value is number => value !== undefined);
  return ratios.length === 0 ? undefined : median(ratios);
}

const RATIOS: [Setup, Setup][] = (
  [
    ['ours', 'stock'],
    ['ours', 'core'],
    ['ours+audit', 'ours'],
    ['ours+audit', 'ours-bare'],
    ['ours+tls', 'ours'],
    ['ours', 'baseline'],
  ] as [Setup, Setup][]
).filter(([setup, other]) => SETUPS.includes(setup) && SETUPS.includes(other));

function report(): string {
  const workloads = [...new Set(samples.filter((s) => !s.workload.startsWith('paired ')).map((s) => s.workload))];
  if (workloads.length === 0) return '';
  const lines = [
    `| workload | unit | ${SETUPS.map((setup) => `${setup} median (min-max)`).join(' | ')} | ${RATIOS.map(([a, b]) => `${a}/${b}`).join(' | ')} |`,
    `|${' --- |'.repeat(SETUPS.length + 2 + RATIOS.length)}`,
  ];
  for (const workload of workloads) {
    const cells = SETUPS.map((setup) => {
      const values = samples.filter((s) => s.workload === workload && s.setup === setup);
      if (values.some((s) => !s.valid)) return 'INVALID (lost or wrong data)';
      const numbers = values.map((s) => s.value);
      if (numbers.length === 0) return '-';
      const p95 = workload.startsWith('find') || workload === 'echo' ? `, p95 ${percentile(numbers, 95).toFixed(1)}` : '';
      return `${median(numbers).toFixed(1)} (${Math.min(...numbers).toFixed(1)}-${Math.max(...numbers).toFixed(1)}${p95})`;
    });
    const format = (value: number | undefined) => (value === undefined ? '-' : value.toFixed(2));
    const unit = samples.find((s) => s.workload === workload)!.unit;
    const ratios = RATIOS.map(([setup, other]) => ratio(workload, setup, other));
    lines.push(`| ${workload} | ${unit} | ${cells.join(' | ')} | ${ratios.map(format).join(' | ')} |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const base = onDisk ? join(ROOT, 'var', 'bench') : '/dev/shm';
  await mkdir(base, { recursive: true });
  workDirectory = await mkdtemp(join(base, 'mtd-bench-'));
  const started = performance.now();
  console.log(`Benchmark (${quick ? 'quick' : 'full'}, ${ROUNDS} rounds, storage ${onDisk ? 'on disk' : 'on a tmpfs'}) in ${workDirectory}`);
  try {
    await makeTlsFiles();
    if (selected('startup')) await startupAndIdleMemory();
    if (selected('echo')) await echoWorkload();

    const storeFiles = await writeDataset(join(workDirectory, 'store-data'), {
      prefix: '1.2.826.0.1.3680043.10.1234.800',
      patients: quick ? 3 : 10,
      studiesPerPatient: 1,
      seriesPerStudy: 2,
      instancesPerSeries: SIZES.storeInstances / (quick ? 6 : 20),
      pixels: { rows: 256, columns: 256 },
    });
    if (selected('store')) {
      await storeWorkload(storeFiles, 1, 'store-1assoc');
      await storeWorkload(storeFiles, 4, 'store-4assoc');
    }

    if (selected('find')) await findWorkload();

    const moveFiles = await writeDataset(join(workDirectory, 'move-data'), {
      prefix: '1.2.826.0.1.3680043.10.1234.700',
      patients: 1,
      studiesPerPatient: 1,
      seriesPerStudy: 1,
      instancesPerSeries: SIZES.moveInstances,
      pixels: { rows: 256, columns: 256 },
    });
    if (selected('move')) await moveWorkload(moveFiles);
    if (selected('paired')) for (const pair of PAIRS) await pairedWorkload(pair);
  } finally {
    await rm(workDirectory, { recursive: true, force: true });
  }

  const table = [report(), pairedReport()].filter((part) => part !== '').join('\n\n');
  console.log(`\n${table}\n\nTotal time: ${((performance.now() - started) / 1000).toFixed(0)} s`);
  const resultsDirectory = join(ROOT, 'bench', 'results');
  await mkdir(resultsDirectory, { recursive: true });
  const file = join(resultsDirectory, `${new Date().toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
  await writeFile(file, JSON.stringify({ quick, onDisk, rounds: ROUNDS, sizes: { ...SIZES, pairedBatch: PAIRED_BATCH, pairedSteps: PAIRED_STEPS }, samples, table }, null, 2));
  console.log(`Raw samples: ${file}`);
  if (samples.some((s) => !s.valid)) {
    console.log('Some runs lost or returned wrong data: they are reported INVALID, not timed.');
    process.exitCode = 1;
  }
}

await main();
