// What a tenant's C-STORE SCP accepts, and the statuses it answers, with Orthanc's own
// DICOM port of the same Orthanc as the oracle: every case sends one file to the main
// port and a twin file (same content, other patient and UIDs) to the tenant, and expects
// - the same association outcome, the same presentation contexts accepted (storescu -d
//   prints the A-ASSOCIATE-AC) and the same outcome per file ("no presentation context",
//   or the DIMSE status of the C-STORE-RSP);
// - the tenant's file stored (same SOP class and transfer syntax as the main port's) and
//   labelled when the main port stored its file; nothing stored, and no label, otherwise.
//
// Orthancs, started side by side, one tenant each:
// - "defaults": the default configuration, and a Lua ReceivedInstanceFilter;
// - "littleEndian": UnknownSopClassAccepted true, AcceptedTransferSyntaxes Little Endian only;
// - "legacyJpeg": JpegTransferSyntaxAccepted false (the older group options);
// - "ctOnly": AcceptedSopClasses [CT Image Storage, a private SOP class];
// - "wildcards": AcceptedSopClasses and RejectedSopClasses with wildcards (both spellings of
//   the latter, see "rejectedOnly" and "rejectOnly");
// - "rejectedOnly" / "rejectOnly": a wildcard in "RejectedSopClasses" (the documented name,
//   read by Orthanc >= 1.12.8) / in "RejectSopClasses" (the name Orthanc 1.12.6 and 1.12.7
//   read, still read by later versions when "RejectedSopClasses" is absent);
// - "cstoreFilter": a Lua ReceivedCStoreInstanceFilter;
// - "full": MaximumStorageSize 1 MB, MaximumStorageMode "Reject".
//
// Orthanc's framework (1.12.7) applies IApplicationEntityFilter::GetAcceptedSopClasses, and
// its own way of choosing transfer syntaxes, only on a DicomServer with a C-GET SCP: the
// tenants have one, as Orthanc's own port (sameAnswer() checks both answers).
//
// KNOWN DIFFERENCES (knownDifference(): the main port's answer and the tenant's are both
// pinned, so that a change of either fails the test):
// - The tenant stores through Orthanc's REST API: a Lua ReceivedInstanceFilter sees the
//   origin "Plugins" (no RemoteAet, CalledAet, RemoteIp), a ReceivedCStoreInstanceFilter
//   is not called, and the instance's metadata say Origin "Plugins", RemoteAET "".
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_UID_ROOT, orthancIds } from '../support/dataset.js';
import { runTool, type DcmtkResult } from '../support/dcmtk.js';
import { freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { multitenantSection, PLUGIN_PATH, tenantServer } from '../support/plugin.js';

const CALLING_AET = 'ACCEPT_SCU';
const TENANT_AET = 'ACCEPT_T';
const LABEL = 'acceptance';

const SOP_CLASS = {
  CT: '1.2.840.10008.5.1.4.1.1.2',
  MR: '1.2.840.10008.5.1.4.1.1.4',
  ENHANCED_MR: '1.2.840.10008.5.1.4.1.1.4.1',
  US: '1.2.840.10008.5.1.4.1.1.6.1',
  SC: '1.2.840.10008.5.1.4.1.1.7',
  NM: '1.2.840.10008.5.1.4.1.1.20',
  /**
   * Siemens CSA Non-Image Storage: a private SOP class that is not among DCMTK's storage
   * SOP classes, accepted with UnknownSopClassAccepted, or when listed in AcceptedSopClasses.
   */
  SIEMENS: '1.3.12.2.1107.5.9.1',
  /** A SOP class nobody knows. */
  UNKNOWN: '1.2.826.0.1.3680043.10.1234.99.1',
} as const;

const TRANSFER_SYNTAX = {
  implicit: '1.2.840.10008.1.2',
  explicit: '1.2.840.10008.1.2.1',
  deflate: '1.2.840.10008.1.2.1.99',
  jpeg: '1.2.840.10008.1.2.4.50', // JPEG Baseline (Process 1)
  rle: '1.2.840.10008.1.2.5',
} as const;

const LITTLE_ENDIAN = [TRANSFER_SYNTAX.implicit, TRANSFER_SYNTAX.explicit];

type Encoding = 'explicit' | 'jpeg' | 'rle' | 'deflate';
const COMPRESSED: Exclude<Encoding, 'explicit'>[] = ['jpeg', 'rle', 'deflate'];

/** How a file is encoded from its explicit little endian original, and what storescu proposes for it. */
const ENCODINGS: Record<Encoding, { convert?: string[]; propose: string[] }> = {
  explicit: { propose: [] },
  jpeg: { convert: ['dcmcjpeg', '+eb', '+un'], propose: ['-xy'] },
  rle: { convert: ['dcmcrle'], propose: ['-xr'] },
  deflate: { convert: ['dcmconv', '+td'], propose: ['-xd'] },
};

// ---------------------------------------------------------------------------------------
// Ports: distinct, and outside the ephemeral range (see test/integration/store.test.ts).

// Distinct ports, outside the ephemeral range (see freePort).
const uniquePort = freePort;

// ---------------------------------------------------------------------------------------
// Files: 8-bit MONOCHROME2 images written by dump2dcm, then compressed by DCMTK.

let directory: string;
let fileCount = 0;

interface TestFile {
  path: string;
  patientId: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  transferSyntaxUid: string;
  /** Orthanc's identifiers of its patient and instance. */
  patient: string;
  instance: string;
}

interface FileSpec {
  sopClassUid?: string;
  patientId?: string;
  /** Rows and columns (bytes of pixel data: size²). */
  size?: number;
  encoding?: Encoding;
}

async function dicomFile(name: string, spec: FileSpec = {}): Promise<TestFile> {
  const n = ++fileCount;
  const root = `${DEFAULT_UID_ROOT}.88.${process.pid % 100_000}.${n}`;
  const { sopClassUid = SOP_CLASS.SC, patientId = `ACC-${n}`, size = 8, encoding = 'explicit' } = spec;
  const base = join(directory, `${n}-${name}`);
  const pixels = Buffer.alloc(size * size);
  for (let i = 0; i < pixels.length; i++) pixels[i] = ((i % size) * 3 + Math.floor(i / size) * 5 + n) & 0xff;
  await writeFile(`${base}.raw`, pixels);
  const dump = [
    `(0008,0016) UI [${sopClassUid}]`,
    `(0008,0018) UI [${root}.3]`,
    `(0008,0060) CS [OT]`,
    `(0010,0010) PN [Acceptance^${name.replace(/[^A-Za-z0-9]/g, '')}]`,
    `(0010,0020) LO [${patientId}]`,
    `(0020,000d) UI [${root}.1]`,
    `(0020,000e) UI [${root}.2]`,
    `(0020,0013) IS [1]`,
    `(0028,0002) US 1`,
    `(0028,0004) CS [MONOCHROME2]`,
    `(0028,0010) US ${size}`,
    `(0028,0011) US ${size}`,
    `(0028,0100) US 8`,
    `(0028,0101) US 8`,
    `(0028,0102) US 7`,
    `(0028,0103) US 0`,
    `(7fe0,0010) OB =${base}.raw`,
    '',
  ].join('\n');
  await writeFile(`${base}.dump`, dump);
  const plain = `${base}.plain.dcm`;
  await tool('dump2dcm', ['+te', `${base}.dump`, plain]);
  const path = `${base}.dcm`;
  const { convert } = ENCODINGS[encoding];
  if (convert === undefined) {
    await tool('cp', [plain, path]);
  } else {
    await tool(convert[0]!, [...convert.slice(1), plain, path]);
  }
  // What the file holds, as DCMTK reads it back.
  const dumped = (await tool('dcmdump', ['-s', '-Un', '+P', '0002,0010', '+P', '0008,0018', path])).stdout;
  const transferSyntaxUid = dumped.match(/\(0002,0010\) UI \[([^\]]+)\]/)?.[1];
  const sopInstanceUid = dumped.match(/\(0008,0018\) UI \[([^\]]+)\]/)?.[1];
  const expectedSyntax = encoding === 'explicit' ? TRANSFER_SYNTAX.explicit : TRANSFER_SYNTAX[encoding];
  if (sopInstanceUid !== `${root}.3` || transferSyntaxUid !== expectedSyntax) {
    throw new Error(`${path}: unexpected SOPInstanceUID or transfer syntax:\n${dumped}`);
  }
  const uids = { patientId, studyInstanceUid: `${root}.1`, seriesInstanceUid: `${root}.2`, sopInstanceUid };
  const ids = orthancIds(uids);
  return { path, ...uids, sopClassUid, transferSyntaxUid: expectedSyntax, patient: ids.patient, instance: ids.instance };
}

async function tool(command: string, args: string[]): Promise<DcmtkResult> {
  const result = await runTool(command, args);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${result.stdout}${result.stderr}`);
  return result;
}

/**
 * A file for the main port and its twin for the tenant: same content, but their own
 * patient (a given PatientID gets "-M" and "-T"), study, series and instance.
 */
async function twins(name: string, spec: FileSpec = {}): Promise<{ main: TestFile; tenant: TestFile }> {
  const patientId = (suffix: string) => (spec.patientId === undefined ? undefined : `${spec.patientId}-${suffix}`);
  const [main, tenant] = await Promise.all([
    dicomFile(`${name}-main`, { ...spec, patientId: patientId('M') }),
    dicomFile(`${name}-tenant`, { ...spec, patientId: patientId('T') }),
  ]);
  return { main, tenant };
}

// ---------------------------------------------------------------------------------------
// storescu, and what it reports.

interface StoreOutcome {
  /** "accepted", "rejected (<reason>)", "failed (<error>)" or "none (<fatal error>)". */
  association: string;
  /**
   * The presentation contexts as the SCP answered them: "<abstract syntax> [<proposed
   * transfer syntaxes>]: accepted (<transfer syntax>)" or "...: refused".
   */
  contexts: string[];
  /** Per file: "status 0x...." (the C-STORE-RSP), "no presentation context", or why it was not sent. */
  files: string[];
}

interface StoreRun {
  outcome: StoreOutcome;
  /** The contexts with the SCP's result as is, e.g. "...: Transfer Syntaxes Not Supported". */
  results: string[];
  output: string;
}

function section(lines: string[], name: string): string[] {
  const begin = lines.findIndex((line) => line.includes(`BEGIN ${name}`));
  const end = lines.findIndex((line, i) => i > begin && line.includes(`END ${name}`));
  return begin < 0 || end < 0 ? [] : lines.slice(begin + 1, end);
}

/** Context ID → its lines, in a negotiation dump. */
function contextBlocks(lines: string[]): Map<string, { result: string; lines: string[] }> {
  const blocks = new Map<string, { result: string; lines: string[] }>();
  let current: string[] | undefined;
  for (const line of lines) {
    const start = line.match(/^\s*Context ID:\s+(\d+) \((.+)\)$/);
    if (start) {
      current = [];
      blocks.set(start[1]!, { result: start[2]!, lines: current });
    } else if (/^(Requested|Accepted) Extended Negotiation|^Requested User Identity/.test(line.trim())) {
      current = undefined;
    } else {
      current?.push(line.trim());
    }
  }
  return blocks;
}

function parseStorescu(output: string, files: TestFile[]): { outcome: StoreOutcome; results: string[] } {
  const lines = output.split('\n').map((line) => line.replace(/^[DIWEFT]: /, ''));
  const proposed = contextBlocks(section(lines, 'A-ASSOCIATE-RQ'));
  const answered = contextBlocks(section(lines, 'A-ASSOCIATE-AC'));
  const answers = [...answered].map(([id, { result, lines: block }]) => {
    const abstract = block.find((line) => line.startsWith('Abstract Syntax:'))?.replace(/^Abstract Syntax:\s*=?/, '');
    const proposal = proposed.get(id)?.lines ?? [];
    const syntaxes = proposal.slice(proposal.findIndex((line) => line.startsWith('Proposed Transfer Syntax')) + 1);
    const accepted = block.find((line) => line.startsWith('Accepted Transfer Syntax:'))?.replace(/^Accepted Transfer Syntax:\s*=?/, '');
    const context = `${abstract} [${syntaxes.map((s) => s.replace(/^=/, '')).join(', ')}]`;
    return { context, result, accepted };
  });
  const contexts = answers.map(({ context, result, accepted }) =>
    result === 'Accepted' ? `${context}: accepted (${accepted})` : `${context}: refused`,
  );
  const results = answers.map(({ context, result, accepted }) => `${context}: ${result}${result === 'Accepted' ? ` (${accepted})` : ''}`);

  let association = 'unknown';
  const text = lines.join('\n');
  if (/^Association Accepted/m.test(text)) association = 'accepted';
  else if (/Association Rejected/.test(text)) association = `rejected (${text.match(/^Reason: (.+)$/m)?.[1] ?? '?'})`;
  else if (/Association Request Failed: (.+)/.test(text)) association = `failed (${text.match(/Association Request Failed: (.+)/)![1]})`;
  else if (/^F: (.+)$/m.test(output)) association = `none (${output.match(/^F: (.+)$/m)![1]})`;

  // Each file's part of the output starts at "Sending file: <path>".
  const starts = files.map((file) => lines.findIndex((line) => line === `Sending file: ${file.path}`));
  const outcomes = files.map((_, i) => {
    const start = starts[i]!;
    if (start < 0) return 'not sent';
    const next = starts.filter((s) => s > start).sort((a, b) => a - b)[0] ?? lines.length;
    const part = lines.slice(start, next).join('\n');
    const status = part.match(/DIMSE Status\s*:\s*(0x[0-9a-fA-F]{4})/)?.[1];
    if (status !== undefined) return `status ${status.toLowerCase()}`;
    if (/No presentation context for/.test(part)) return 'no presentation context';
    if (/unable to convert dataset/.test(part)) return 'not sent (storescu cannot convert it to an accepted transfer syntax)';
    return `failed (${part.match(/Store Failed.*\n(.+)/)?.[1] ?? part.split('\n').slice(0, 4).join(' | ')})`;
  });
  return { outcome: { association, contexts, files: outcomes }, results };
}

/**
 * A storescu association profile (-xf): one presentation context per SOP class of
 * SOP_CLASS, each with the 3 uncompressed transfer syntaxes. Without it, storescu proposes
 * no context at all for a SOP class it does not know as a storage SOP class (e.g. UNKNOWN,
 * SIEMENS), and proposes [LittleEndianExplicit] and [BigEndianExplicit, LittleEndianImplicit]
 * as two contexts (see "negotiation details").
 */
const SCU_PROFILE = 'Acceptance';

function scuConfiguration(): string {
  const classes = Object.values(SOP_CLASS);
  return [
    '[[TransferSyntaxes]]',
    '[Uncompressed]',
    'TransferSyntax1 = LittleEndianExplicit',
    'TransferSyntax2 = BigEndianExplicit',
    'TransferSyntax3 = LittleEndianImplicit',
    '',
    '[[PresentationContexts]]',
    '[AcceptanceContexts]',
    ...classes.map((uid, i) => `PresentationContext${i + 1} = ${uid}\\Uncompressed`),
    '',
    '[[Profiles]]',
    `[${SCU_PROFILE}]`,
    'PresentationContexts = AcceptanceContexts',
    '',
  ].join('\n');
}

let scuProfileArgs: string[] = [];

interface StoreOptions {
  /**
   * storescu options, e.g. ["-R", "-xy"]. By default, the profile SCU_PROFILE: exactly one
   * presentation context per SOP class of SOP_CLASS.
   */
  args?: string[];
  callingAet?: string;
}

async function store(port: number, calledAet: string, files: TestFile[], options: StoreOptions = {}): Promise<StoreRun> {
  const result = await runTool(
    'storescu',
    ['-d', '-nh', ...(options.args ?? scuProfileArgs), '-aet', options.callingAet ?? CALLING_AET, '-aec', calledAet, '127.0.0.1', String(port), ...files.map((file) => file.path)],
    30_000,
  );
  const output = result.stdout + result.stderr;
  return { ...parseStorescu(output, files), output };
}

/** Without the PDU dumps, for failure messages. */
function brief(run: StoreRun): string {
  return run.output
    .split('\n')
    .filter((line) => !/^D: (\s|[0-9a-f]{8}|PDU|Only dumping|$)/.test(line) && !/^D: DcmDataDictionary/.test(line))
    .slice(0, 200)
    .join('\n');
}

// ---------------------------------------------------------------------------------------
// The Orthancs.

interface Setup {
  name: string;
  orthanc: RunningOrthanc;
  tenantPort: number;
}

const setups: Record<string, Setup> = {};
const setup = (name: string): Setup => {
  const found = setups[name];
  if (found === undefined) throw new Error(`The "${name}" Orthanc did not start (see beforeAll)`);
  return found;
};

async function startSetup(name: string, configuration: Record<string, unknown>): Promise<void> {
  const tenantPort = await uniquePort();
  const orthanc = await startOrthanc({
    configuration: {
      HttpPort: await uniquePort(),
      DicomPort: await uniquePort(),
      ...multitenantSection(tenantServer(TENANT_AET, tenantPort, { Labels: [LABEL] })),
      ...configuration,
    },
    plugins: [PLUGIN_PATH],
    waitForPorts: [tenantPort],
  });
  setups[name] = { name, orthanc, tenantPort };
}

const RECEIVED_INSTANCE_FILTER = `
function ReceivedInstanceFilter(dicom, origin, info)
  if string.sub(dicom.PatientID or '', 1, 6) == 'REJECT' then
    return false
  end
  if origin.RemoteAet == 'BLOCKED_SCU' then
    return false
  end
  return true
end
`;

// In Orthanc 1.12.7, the C-STORE filter keeps an instance when it returns a non-zero
// value, and discards it (with the status Success) when it returns 0; later versions may
// read the value as the DIMSE status. Either way, one of these two patients is refused
// on the main port.
const RECEIVED_CSTORE_INSTANCE_FILTER = `
function ReceivedCStoreInstanceFilter(dicom, origin, info)
  if string.sub(dicom.PatientID or '', 1, 6) == 'CSTORE' then
    return 0xA700
  end
  return 0
end
`;

const MR_WILDCARD = '1.2.840.10008.5.1.4.1.1.4*';

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'store-acceptance-'));
  const receivedFilter = join(directory, 'received-instance-filter.lua');
  const cstoreFilter = join(directory, 'received-cstore-instance-filter.lua');
  await writeFile(receivedFilter, RECEIVED_INSTANCE_FILTER);
  await writeFile(cstoreFilter, RECEIVED_CSTORE_INSTANCE_FILTER);
  const scuConfigurationPath = join(directory, 'storescu.cfg');
  await writeFile(scuConfigurationPath, scuConfiguration());
  scuProfileArgs = ['-xf', scuConfigurationPath, SCU_PROFILE];
  const wildcardRejections = [MR_WILDCARD, '1.2.840.10008.5.1.4.1.1.?', '1.3.12.2.1107.*'];
  await Promise.all([
    startSetup('defaults', { LuaScripts: [receivedFilter] }),
    startSetup('littleEndian', { UnknownSopClassAccepted: true, AcceptedTransferSyntaxes: LITTLE_ENDIAN }),
    startSetup('legacyJpeg', { JpegTransferSyntaxAccepted: false }),
    startSetup('ctOnly', { AcceptedSopClasses: [SOP_CLASS.CT, SOP_CLASS.SIEMENS] }),
    startSetup('wildcards', {
      AcceptedSopClasses: ['1.2.840.10008.5.1.4.1.1.*', SOP_CLASS.SIEMENS],
      RejectedSopClasses: wildcardRejections,
      RejectSopClasses: wildcardRejections,
    }),
    startSetup('rejectedOnly', { RejectedSopClasses: [MR_WILDCARD] }),
    startSetup('rejectOnly', { RejectSopClasses: [MR_WILDCARD] }),
    startSetup('cstoreFilter', { LuaScripts: [cstoreFilter] }),
    startSetup('full', { MaximumStorageSize: 1, MaximumStorageMode: 'Reject' }),
  ]);
});

afterAll(async () => {
  await stopAllOrthancs();
  if (directory !== undefined) await rm(directory, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------
// Comparing the ports.

type FileState =
  | 'missing'
  | 'patient without the instance'
  | { labels: string[]; sopClassUid: string; transferSyntax: string };

async function stateOf(orthanc: RunningOrthanc, file: TestFile): Promise<FileState> {
  const instance = await orthanc.rest<{ Labels: string[] }>('GET', `/instances/${file.instance}`);
  if (instance.status === 404) {
    const patient = await orthanc.rest('GET', `/patients/${file.patient}`);
    return patient.status === 404 ? 'missing' : 'patient without the instance';
  }
  expect(instance.status).toBe(200);
  const metadata = await orthanc.rest<Record<string, string>>('GET', `/instances/${file.instance}/metadata?expand`);
  return {
    labels: [...instance.body.Labels].sort(),
    sopClassUid: metadata.body['SopClassUid'] ?? '?',
    transferSyntax: metadata.body['TransferSyntax'] ?? '?',
  };
}

/** What the tenant's twin of a file should be, given the main port's file. */
function tenantCounterpart(state: FileState): FileState {
  return typeof state === 'string' ? state : { ...state, labels: [...state.labels, LABEL].sort() };
}

interface Comparison {
  main: StoreRun;
  tenant: StoreRun;
  mainStates: FileState[];
  tenantStates: FileState[];
}

/** Sends the main files to the main port, then their twins to the tenant, and reads back what Orthanc has. */
async function sendToBoth(
  name: string,
  files: { main: TestFile; tenant: TestFile }[],
  options: StoreOptions = {},
): Promise<Comparison> {
  const { orthanc, tenantPort } = setup(name);
  const main = await store(orthanc.dicomPort, 'ORTHANC', files.map((pair) => pair.main), options);
  const tenant = await store(tenantPort, TENANT_AET, files.map((pair) => pair.tenant), options);
  const mainStates = await Promise.all(files.map((pair) => stateOf(orthanc, pair.main)));
  const tenantStates = await Promise.all(files.map((pair) => stateOf(orthanc, pair.tenant)));
  return { main, tenant, mainStates, tenantStates };
}

/** The tenant did as the main port: same negotiation, same statuses, stored and labelled alike. */
function expectSame(comparison: Comparison): void {
  const { main, tenant, mainStates, tenantStates } = comparison;
  const context = `main port:\n${brief(main)}\n\ntenant:\n${brief(tenant)}`;
  expect(tenant.outcome, context).toEqual(main.outcome);
  for (const state of mainStates) {
    if (typeof state !== 'string') expect(state.labels, 'labels of an instance stored through the main port').toEqual([]);
    expect(state, 'the main port stores all or nothing').not.toBe('patient without the instance');
  }
  expect(tenantStates, `what the tenant stored\n${context}`).toEqual(mainStates.map(tenantCounterpart));
}

const stored = (state: FileState) => typeof state !== 'string';

/** A case where the tenant answers as the main port, whose answer is checked too. */
function sameAnswer(title: string, run: () => Promise<Comparison>, oracle: (comparison: Comparison) => void): void {
  it(`${title}: the main port's answer, and the same from the tenant`, async () => {
    const comparison = await run();
    oracle(comparison);
    expectSame(comparison);
  });
}

/**
 * A case where the tenant does not answer as the main port (see KNOWN DIFFERENCES at the
 * top): one test pins both answers, exactly what the main port answers (the oracle) and
 * exactly what the tenant answers (the known difference). It fails when either changes:
 * when the tenant answers as the main port, make it a sameAnswer().
 */
function knownDifference(
  title: string,
  run: () => Promise<Comparison>,
  expected: { main: (comparison: Comparison) => void; tenant: (comparison: Comparison) => void },
): void {
  it(`${title}: KNOWN DIFFERENCE, the main port's answer and the tenant's, both pinned`, async () => {
    const comparison = await run();
    const context = `main port:\n${brief(comparison.main)}\n\ntenant:\n${brief(comparison.tenant)}`;
    expect(comparison.main.outcome.association, `the main port's association\n${context}`).toBe('accepted');
    expected.main(comparison);
    expected.tenant(comparison);
  });
}

/** What Orthanc holds of a file stored as sent (an 8x8 Secondary Capture, Explicit VR Little Endian), with these labels. */
const storedAsSent = (labels: string[]): FileState => ({ labels, sopClassUid: SOP_CLASS.SC, transferSyntax: TRANSFER_SYNTAX.explicit });

// ---------------------------------------------------------------------------------------

describe('UnknownSopClassAccepted', () => {
  it('false (the default): an instance of an unknown SOP class is refused by both ports', async () => {
    const comparison = await sendToBoth('defaults', [await twins('unknown-default', { sopClassUid: SOP_CLASS.UNKNOWN })]);
    expectSame(comparison);
    expect(comparison.main.outcome.files).toEqual(['no presentation context']);
  });

  it('PUT /tools/unknown-sop-class-accepted "1", then "false": the next association of each port follows', async () => {
    const { orthanc } = setup('defaults');
    try {
      // The body is a boolean as text: "1"/"0" or "true"/"false" ('"1"' is a 400).
      expect((await orthanc.rest('PUT', '/tools/unknown-sop-class-accepted', '1')).status).toBe(200);
      expect((await orthanc.rest('GET', '/tools/unknown-sop-class-accepted')).body).toBe('1');
      const accepted = await sendToBoth('defaults', [await twins('unknown-put-1', { sopClassUid: SOP_CLASS.UNKNOWN })]);
      expectSame(accepted);
      expect(accepted.main.outcome.files).toEqual(['status 0x0000']);
      expect(stored(accepted.tenantStates[0]!)).toBe(true);

      expect((await orthanc.rest('PUT', '/tools/unknown-sop-class-accepted', 'false')).status).toBe(200);
      expect((await orthanc.rest('GET', '/tools/unknown-sop-class-accepted')).body).toBe('0');
      const refused = await sendToBoth('defaults', [await twins('unknown-put-0', { sopClassUid: SOP_CLASS.UNKNOWN })]);
      expectSame(refused);
      expect(refused.main.outcome.files).toEqual(['no presentation context']);
    } finally {
      await orthanc.rest('PUT', '/tools/unknown-sop-class-accepted', '0');
    }
  });

  it('true in the configuration: accepted by both; after PUT "0", refused by both', async () => {
    const { orthanc } = setup('littleEndian');
    const accepted = await sendToBoth('littleEndian', [await twins('unknown-config', { sopClassUid: SOP_CLASS.UNKNOWN })]);
    expectSame(accepted);
    expect(accepted.main.outcome.files).toEqual(['status 0x0000']);
    try {
      expect((await orthanc.rest('PUT', '/tools/unknown-sop-class-accepted', '0')).status).toBe(200);
      const refused = await sendToBoth('littleEndian', [await twins('unknown-config-put-0', { sopClassUid: SOP_CLASS.UNKNOWN })]);
      expectSame(refused);
      expect(refused.main.outcome.files).toEqual(['no presentation context']);
    } finally {
      await orthanc.rest('PUT', '/tools/unknown-sop-class-accepted', '1');
    }
  });

  it('true: a private SOP class (1.3.12.2.1107.5.9.1) is accepted by both', async () => {
    const comparison = await sendToBoth('littleEndian', [await twins('siemens-promiscuous', { sopClassUid: SOP_CLASS.SIEMENS })]);
    expectSame(comparison);
    expect(comparison.main.outcome.files).toEqual(['status 0x0000']);
  });
});

// ---------------------------------------------------------------------------------------

/** One file per association, storescu proposing only what the file needs (-R) plus its encoding. */
async function sendEncoded(name: string, encoding: Encoding, label: string): Promise<Comparison> {
  const files = await twins(`${label}-${encoding}`, { encoding });
  return sendToBoth(name, [files], { args: ['-R', ...ENCODINGS[encoding].propose] });
}

/** The presentation context of the file's own transfer syntax, as the main port answered it. */
function compressedContext(comparison: Comparison, encoding: Exclude<Encoding, 'explicit'>): string | undefined {
  const names = { jpeg: 'JPEGBaseline', rle: 'RLELossless', deflate: 'DeflatedLittleEndianExplicit' };
  return comparison.main.outcome.contexts.find((context) => context.includes(`[${names[encoding]}]`));
}

describe('transfer syntaxes', () => {
  it.each(COMPRESSED)('the default configuration: %s accepted by both, stored as received', async (encoding) => {
    const comparison = await sendEncoded('defaults', encoding, 'default');
    expectSame(comparison);
    expect(compressedContext(comparison, encoding)).toMatch(/: accepted/);
    expect(comparison.mainStates[0]).toMatchObject({ transferSyntax: TRANSFER_SYNTAX[encoding] });
  });

  it.each(COMPRESSED)('AcceptedTransferSyntaxes limited to Little Endian: %s refused by both', async (encoding) => {
    const comparison = await sendEncoded('littleEndian', encoding, 'little-endian');
    expectSame(comparison);
    expect(compressedContext(comparison, encoding)).toMatch(/: refused$/);
  });

  it.each([
    { encoding: 'jpeg', accepted: false },
    { encoding: 'rle', accepted: true },
    { encoding: 'deflate', accepted: true },
  ] as const)('JpegTransferSyntaxAccepted false: $encoding accepted: $accepted, by both', async ({ encoding, accepted }) => {
    const comparison = await sendEncoded('legacyJpeg', encoding, 'legacy');
    expectSame(comparison);
    expect(compressedContext(comparison, encoding)).toMatch(accepted ? /: accepted/ : /: refused$/);
  });

  it('PUT /tools/accepted-transfer-syntaxes: the next association of each port follows', async () => {
    const { orthanc } = setup('defaults');
    const before = (await orthanc.rest<string[]>('GET', '/tools/accepted-transfer-syntaxes')).body;
    expect(before).toEqual(expect.arrayContaining(COMPRESSED.map((encoding) => TRANSFER_SYNTAX[encoding])));
    try {
      // The body: a JSON list of UIDs (wildcards allowed), or one UID as a JSON string.
      const put = await orthanc.rest<string[]>('PUT', '/tools/accepted-transfer-syntaxes', LITTLE_ENDIAN);
      expect(put.status).toBe(200);
      expect([...put.body].sort()).toEqual([...LITTLE_ENDIAN].sort());
      for (const encoding of COMPRESSED) {
        const comparison = await sendEncoded('defaults', encoding, 'put-little-endian');
        expectSame(comparison);
        expect(compressedContext(comparison, encoding), encoding).toMatch(/: refused$/);
      }
    } finally {
      expect((await orthanc.rest('PUT', '/tools/accepted-transfer-syntaxes', before)).status).toBe(200);
    }
    // And back.
    const comparison = await sendEncoded('defaults', 'jpeg', 'put-restored');
    expectSame(comparison);
    expect(compressedContext(comparison, 'jpeg')).toMatch(/: accepted/);
  });

  it('PUT /tools/accepted-transfer-syntaxes adding JPEG Baseline (a wildcard entry): accepted by both', async () => {
    const { orthanc } = setup('littleEndian');
    try {
      const put = await orthanc.rest<string[]>('PUT', '/tools/accepted-transfer-syntaxes', [...LITTLE_ENDIAN, '1.2.840.10008.1.2.4.5?']);
      expect(put.status).toBe(200);
      expect(put.body).toContain(TRANSFER_SYNTAX.jpeg);
      const jpeg = await sendEncoded('littleEndian', 'jpeg', 'put-jpeg');
      expectSame(jpeg);
      expect(compressedContext(jpeg, 'jpeg')).toMatch(/: accepted/);
      const rle = await sendEncoded('littleEndian', 'rle', 'put-jpeg');
      expectSame(rle);
      expect(compressedContext(rle, 'rle')).toMatch(/: refused$/);
    } finally {
      await orthanc.rest('PUT', '/tools/accepted-transfer-syntaxes', LITTLE_ENDIAN);
    }
  });
});

// ---------------------------------------------------------------------------------------

describe('negotiation details', () => {
  sameAnswer(
    'a context refused for its transfer syntax: the same result reason',
    () => sendEncoded('littleEndian', 'jpeg', 'reason'),
    (comparison) => {
      expect(compressedContext(comparison, 'jpeg')).toMatch(/: refused$/);
      expect(comparison.tenant.results).toEqual(comparison.main.results);
    },
  );

  sameAnswer(
    "storescu's default proposals ([LittleEndianExplicit] and [BigEndianExplicit, LittleEndianImplicit] per SOP class): the same transfer syntax accepted",
    async () => sendToBoth('defaults', [await twins('default-proposals', {})], { args: [] }),
    (comparison) => {
      expect(comparison.main.outcome.files).toEqual(['status 0x0000']);
      expect(comparison.tenant.outcome.contexts).toEqual(comparison.main.outcome.contexts);
    },
  );
});

// ---------------------------------------------------------------------------------------

describe('AcceptedSopClasses and RejectedSopClasses', () => {
  const sopFiles = (label: string, classes: (keyof typeof SOP_CLASS)[]) =>
    Promise.all(classes.map((name) => twins(`${label}-${name}`, { sopClassUid: SOP_CLASS[name] })));

  sameAnswer(
    'AcceptedSopClasses [CT Image Storage, 1.3.12.2.1107.5.9.1]: CT and the private class stored, MR refused',
    async () => sendToBoth('ctOnly', await sopFiles('ct-only', ['CT', 'SIEMENS', 'MR'])),
    (comparison) => expect(comparison.main.outcome.files).toEqual(['status 0x0000', 'status 0x0000', 'no presentation context']),
  );

  sameAnswer(
    'AcceptedSopClasses [CT Image Storage, ...]: the same answer for each of the storage SOP classes storescu proposes',
    // Without -R, storescu proposes the storage SOP classes it knows (64 with +C: one
    // context per SOP class).
    async () => sendToBoth('ctOnly', await sopFiles('ct-only-all', ['CT']), { args: ['+C'] }),
    (comparison) => {
      expect(comparison.main.outcome.contexts.length).toBeGreaterThan(50);
      expect(comparison.main.outcome.contexts.filter((context) => context.includes(': accepted'))).toEqual([
        expect.stringMatching(/^CTImageStorage /),
      ]);
    },
  );

  sameAnswer(
    'wildcards in AcceptedSopClasses and RejectedSopClasses (both spellings): MR*, CT and SC refused, US and NM stored',
    // Rejected: MR and Enhanced MR ("...1.1.4*"), CT and SC ("...1.1.?").
    async () => sendToBoth('wildcards', await sopFiles('wildcards', ['CT', 'MR', 'ENHANCED_MR', 'SC', 'US', 'NM'])),
    (comparison) =>
      expect(comparison.main.outcome.files).toEqual([
        'no presentation context',
        'no presentation context',
        'no presentation context',
        'no presentation context',
        'status 0x0000',
        'status 0x0000',
      ]),
  );

  sameAnswer(
    'wildcards in AcceptedSopClasses and RejectedSopClasses: the same answer for every SOP class storescu proposes',
    async () => sendToBoth('wildcards', await sopFiles('wildcards-all', ['US']), { args: ['+C'] }),
    (comparison) => expect(comparison.main.outcome.contexts.filter((context) => context.includes(': refused')).length).toBeGreaterThan(5),
  );

  sameAnswer(
    'a private SOP class listed in AcceptedSopClasses that a RejectedSopClasses wildcard matches ("1.3.12.2.1107.*")',
    // Orthanc applies the wildcards of RejectedSopClasses to the SOP classes DCMTK knows only.
    async () => sendToBoth('wildcards', await sopFiles('wildcards-siemens', ['SIEMENS'])),
    (comparison) => expect(comparison.main.outcome.files).toEqual(['status 0x0000']),
  );

  it('a wildcard in "RejectedSopClasses" only (the documented name): the same answer from both', async () => {
    // Orthanc 1.12.7 reads "RejectSopClasses" only: its own port accepts MR here.
    expectSame(await sendToBoth('rejectedOnly', await sopFiles('rejected-only', ['MR', 'ENHANCED_MR', 'CT'])));
  });

  sameAnswer(
    'a wildcard in "RejectSopClasses" only (the name Orthanc 1.12.6 and 1.12.7 read)',
    async () => sendToBoth('rejectOnly', await sopFiles('reject-only', ['MR', 'ENHANCED_MR', 'CT'])),
    (comparison) => expect(comparison.main.outcome.files.at(-1)).toBe('status 0x0000'),
  );
});

// ---------------------------------------------------------------------------------------

describe('a Lua ReceivedInstanceFilter', () => {
  it('refusing PatientID "REJECT*": the same status from both ports, nothing stored, no label', async () => {
    const files = await Promise.all([twins('lua-reject', { patientId: 'REJECT_LUA' }), twins('lua-keep', { patientId: 'KEEP_LUA' })]);
    const comparison = await sendToBoth('defaults', files);
    expectSame(comparison);
    // As the core: Success, for compatibility, although the instance is discarded.
    expect(comparison.main.outcome.files).toEqual(['status 0x0000', 'status 0x0000']);
    expect([comparison.mainStates[0], comparison.tenantStates[0]]).toEqual(['missing', 'missing']);
    expect(comparison.tenantStates[1]).toMatchObject({ labels: [LABEL] });
  });

  // The tenant stores through Orthanc's REST API: the filter's "origin" is "Plugins",
  // without RemoteAet, CalledAet or RemoteIp.
  knownDifference(
    'refusing a calling AET (origin.RemoteAet)',
    async () => sendToBoth('defaults', [await twins('lua-blocked-aet', {})], { callingAet: 'BLOCKED_SCU' }),
    {
      // The main port: Success (as for any instance a filter discards), nothing stored.
      main: ({ main, mainStates }) => {
        expect(main.outcome.files).toEqual(['status 0x0000']);
        expect(mainStates).toEqual(['missing']);
      },
      // The tenant: the same negotiation and status, and the instance stored and labelled.
      tenant: ({ main, tenant, tenantStates }) => {
        expect(tenant.outcome).toEqual(main.outcome);
        expect(tenantStates).toEqual([storedAsSent([LABEL])]);
      },
    },
  );
});

describe('a Lua ReceivedCStoreInstanceFilter', () => {
  // Orthanc calls it for instances received by C-STORE (origin "DicomProtocol") only.
  knownDifference(
    'CSTORE_A (the filter answers 0xA700) and OTHER_B (0) sent to each port',
    async () =>
      sendToBoth('cstoreFilter', await Promise.all([twins('cstore-a', { patientId: 'CSTORE_A' }), twins('cstore-b', { patientId: 'OTHER_B' })])),
    {
      // Orthanc 1.12.7 (see the filter): CSTORE_A (0xA700, non-zero) is kept, OTHER_B (0) is
      // discarded, both with Success.
      main: ({ main, mainStates }) => {
        expect(main.outcome.files).toEqual(['status 0x0000', 'status 0x0000']);
        expect(mainStates).toEqual([storedAsSent([]), 'missing']);
      },
      // The tenant: the same negotiation and statuses, and both stored and labelled.
      tenant: ({ main, tenant, tenantStates }) => {
        expect(tenant.outcome).toEqual(main.outcome);
        expect(tenantStates).toEqual([storedAsSent([LABEL]), storedAsSent([LABEL])]);
      },
    },
  );
});

// ---------------------------------------------------------------------------------------

describe('storage full (MaximumStorageSize 1 MB, MaximumStorageMode "Reject")', () => {
  it('the same status from both ports (0xA700), nothing half-stored through the tenant', async () => {
    const { orthanc } = setup('full');
    // 600 x 600 bytes: two files fill 0.69 of the 1 MB, a third does not fit.
    const [first, second, big, small] = await Promise.all([
      dicomFile('full-first', { size: 600 }),
      dicomFile('full-second', { size: 600 }),
      twins('full-big', { size: 600 }),
      twins('full-small', { size: 8 }),
    ]);
    for (const file of [first, second]) {
      const posted = await orthanc.rest('POST', '/instances', readFileSync(file.path));
      expect(posted.status, JSON.stringify(posted.body)).toBe(200);
    }
    const statistics = async () => (await orthanc.rest<Record<string, unknown>>('GET', '/statistics')).body;
    const before = await statistics();
    expect(before).toMatchObject({ CountInstances: 2 });

    const full = await sendToBoth('full', [big]);
    expectSame(full);
    expect(full.main.outcome.files).toEqual(['status 0xa700']);
    expect(full.tenantStates).toEqual(['missing']);
    expect(await statistics(), 'nothing new in the storage').toEqual(before);

    // What still fits is stored by both.
    const fits = await sendToBoth('full', [small]);
    expectSame(fits);
    expect(fits.main.outcome.files).toEqual(['status 0x0000']);

    // An instance Orthanc has already: Success from the main port; the tenant refuses it,
    // as it is not the tenant's ("ForeignInstances" is "Reject" by default).
    const again = await sendToBoth('full', [{ main: first, tenant: second }]);
    expect(again.main.outcome.files).toEqual(['status 0x0000']);
    expect(again.tenant.outcome.files).toEqual(['status 0x0124']);
    expect(again.tenantStates).toEqual([expect.objectContaining({ labels: [] })]);
  });
});

// ---------------------------------------------------------------------------------------

describe('what Orthanc records about the sender', () => {
  const SENDER_METADATA = ['Origin', 'RemoteAET', 'CalledAET', 'RemoteIP'];
  const senderOf = async (file: TestFile) => {
    const metadata = await setup('defaults').orthanc.rest<Record<string, string>>('GET', `/instances/${file.instance}/metadata?expand`);
    return Object.fromEntries(SENDER_METADATA.map((name) => [name, metadata.body[name] ?? '(none)']));
  };
  let senders: { main: Record<string, string>; tenant: Record<string, string> } | undefined;

  // The tenant stores through Orthanc's REST API, which records the origin "Plugins"; these
  // system metadata cannot be written afterwards (PUT /instances/{id}/metadata/RemoteAET: 403).
  knownDifference(
    'the metadata Origin, RemoteAET, CalledAET and RemoteIP of the stored instance',
    async () => {
      const files = await twins('sender', {});
      const comparison = await sendToBoth('defaults', [files]);
      senders = { main: await senderOf(files.main), tenant: await senderOf(files.tenant) };
      return comparison;
    },
    {
      main: (comparison) => {
        expect(comparison.main.outcome.files).toEqual(['status 0x0000']);
        expect(senders?.main).toEqual({ Origin: 'DicomProtocol', RemoteAET: CALLING_AET, CalledAET: 'ORTHANC', RemoteIP: '127.0.0.1' });
      },
      // Stored and labelled as through the main port, recorded as stored by a plugin.
      tenant: (comparison) => {
        expectSame(comparison);
        expect(senders?.tenant).toEqual({ Origin: 'Plugins', RemoteAET: '', CalledAET: '(none)', RemoteIP: '(none)' });
      },
    },
  );
});

// ---------------------------------------------------------------------------------------

describe('an instance Orthanc has already', () => {
  it('sent twice to each port: Success both times, on both ports', async () => {
    const files = await twins('twice', {});
    const first = await sendToBoth('defaults', [files]);
    expectSame(first);
    const second = await sendToBoth('defaults', [files]);
    expectSame(second);
    expect([first.main.outcome.files, second.main.outcome.files]).toEqual([['status 0x0000'], ['status 0x0000']]);
    expect(second.tenantStates).toEqual(first.tenantStates);
  });

  it('stored through the main port, then sent to the tenant: refused as not the tenant\'s (0x0124), no label', async () => {
    const file = await dicomFile('main-then-tenant');
    const { orthanc, tenantPort } = setup('defaults');
    const main = await store(orthanc.dicomPort, 'ORTHANC', [file]);
    const tenant = await store(tenantPort, TENANT_AET, [file]);
    expect([main.outcome.files, tenant.outcome.files], `${brief(main)}\n\n${brief(tenant)}`).toEqual([['status 0x0000'], ['status 0x0124']]);
    expect(await stateOf(orthanc, file)).toMatchObject({ labels: [] });
  });
});
