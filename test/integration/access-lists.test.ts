// The per-tenant access lists, AllowedCallers and AllowedMoveDestinations, against real
// Orthancs and DCMTK clients.
//
// AllowedCallers: one Orthanc per row of SETTINGS (DicomAlwaysAllowEcho/Find/Store,
// StrictAetComparison, DicomCheckModalityHost). Each serves three ports with the same
// DicomModalities: Orthanc's own port (the oracle), the tenant LISTED (AllowedCallers) and
// the tenant OPEN (no list). Every caller makes a C-ECHO, a C-FIND and a C-STORE on each
// port. Expected:
// - OPEN: exactly the outcomes of Orthanc's own port;
// - LISTED, a caller that passes the list (a listed modality's AET, on its Host when
//   DicomCheckModalityHost is true): the outcome of Orthanc's own port, i.e. the core's
//   rules (DicomAlwaysAllow*, per-modality Allow*) still apply;
// - LISTED, any other caller: association rejected, whatever DicomAlwaysAllow* say.
// Then PUT /modalities/later (a listed name unknown at startup) and DELETE /modalities/ws1
// must take effect at once.
//
// AllowedMoveDestinations: one more Orthanc, C-MOVE through the tenant MOVES to storescp
// destinations.
//
// echoscu & co. cannot choose their source address, so every caller comes from 127.0.0.1:
// a host mismatch is obtained by configuring modalities on 127.0.0.2.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeInstance, type SyntheticInstance } from '../support/dataset.js';
import { runTool, storescu, type DcmtkResult } from '../support/dcmtk.js';
import { canConnect, freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { literal, logMessages, multitenantSection, PLUGIN_PATH, tenantName, tenantServer } from '../support/plugin.js';

const CALLER_IP = '127.0.0.1';
const OTHER_IP = '127.0.0.2';
const MAIN_AET = 'ORTHANC';
const LISTED_AET = 'LISTED';
const OPEN_AET = 'OPEN';
const MOVES_AET = 'MOVES';

// ---------------------------------------------------------------------------------------
// Ports: distinct, outside the ephemeral range (see test/integration/store.test.ts).

// Distinct ports, outside the ephemeral range (see freePort).
const uniquePort = freePort;


// ---------------------------------------------------------------------------------------
// Outcomes of a DICOM operation, as the DCMTK clients report them.

type Op = 'echo' | 'find' | 'store';
const OPS: Op[] = ['echo', 'find', 'store'];

const ACCEPTED = 'accepted';
const REJECTED = 'association rejected (Calling AE Title Not Recognized)';
/** Association accepted, then aborted at the request (Orthanc's answer to a refused request). */
const REFUSED = 'request refused (association aborted)';

function outcomeOf(result: DcmtkResult): string {
  const output = `${result.stdout}${result.stderr}`;
  if (/Association Rejected/.test(output)) {
    return `association rejected (${output.match(/^[EF]: Reason: (.+)$/m)?.[1] ?? 'no reason given'})`;
  }
  if (result.ok) return ACCEPTED;
  if (/Peer aborted Association/.test(output)) return REFUSED;
  return `unexpected (code ${result.code}: ${output.trim().replace(/\n/g, ' | ')})`;
}

// ---------------------------------------------------------------------------------------
// AllowedCallers: the settings, the modalities and the callers.

interface Settings {
  DicomAlwaysAllowEcho: boolean;
  DicomAlwaysAllowFind: boolean;
  DicomAlwaysAllowStore: boolean;
  StrictAetComparison: boolean;
  DicomCheckModalityHost: boolean;
}

const ALWAYS: Record<Op, keyof Settings> = {
  echo: 'DicomAlwaysAllowEcho',
  find: 'DicomAlwaysAllowFind',
  store: 'DicomAlwaysAllowStore',
};

const NONE: Settings = {
  DicomAlwaysAllowEcho: false,
  DicomAlwaysAllowFind: false,
  DicomAlwaysAllowStore: false,
  StrictAetComparison: false,
  DicomCheckModalityHost: false,
};
const ALL_ALWAYS = { DicomAlwaysAllowEcho: true, DicomAlwaysAllowFind: true, DicomAlwaysAllowStore: true };
const STRICT_AND_HOST = { StrictAetComparison: true, DicomCheckModalityHost: true };

const SETTINGS: Settings[] = [
  NONE,
  { ...NONE, DicomAlwaysAllowEcho: true },
  { ...NONE, DicomAlwaysAllowFind: true, DicomAlwaysAllowStore: true },
  { ...NONE, ...ALL_ALWAYS },
  { ...NONE, ...STRICT_AND_HOST },
  { ...NONE, ...ALL_ALWAYS, ...STRICT_AND_HOST },
];

const describeSettings = (settings: Settings) =>
  (Object.keys(NONE) as (keyof Settings)[]).map((option) => `${option}=${settings[option]}`).join(', ');

const MODALITIES = {
  ws1: { AET: 'WS1AE', Host: CALLER_IP, Port: 104 }, // every Allow* defaults to true
  ws2: { AET: 'WS2AE', Host: CALLER_IP, Port: 104 },
  mute: { AET: 'MUTEAE', Host: CALLER_IP, Port: 104, AllowEcho: false, AllowFind: false },
  far: { AET: 'FARAE', Host: OTHER_IP, Port: 104 },
  // One AET, two modalities: the listed one on another host, the unlisted one on the caller's.
  'twin-listed': { AET: 'TWINAE', Host: OTHER_IP, Port: 104 },
  'twin-other': { AET: 'TWINAE', Host: CALLER_IP, Port: 104 },
};
/** Listed, but in DicomModalities only after PUT /modalities/later. */
const LATER = { AET: 'LATERAE', Host: CALLER_IP, Port: 104 };
const ALLOWED_CALLERS = ['ws1', 'mute', 'far', 'twin-listed', 'later'];
const KNOWN_LISTED = ALLOWED_CALLERS.filter((name) => name in MODALITIES);

type Round = 'at startup' | 'after PUT /modalities/later and DELETE /modalities/ws1';

interface CallerCase {
  case: string;
  aet: string;
  round: Round;
  /** Whether AllowedCallers lets it through to Orthanc's own rules. */
  passesList(settings: Settings): boolean;
  /** Its modality's Allow* flags, when it passes the list. */
  allows?: Record<Op, boolean>;
}

const ALLOWS_ALL = { echo: true, find: true, store: true };
const START: Round = 'at startup';
const AFTER: Round = 'after PUT /modalities/later and DELETE /modalities/ws1';

const CALLERS: CallerCase[] = [
  { case: 'ws1: listed', aet: 'WS1AE', round: START, passesList: () => true, allows: ALLOWS_ALL },
  {
    case: 'ws1: listed, calling AET in lower case',
    aet: 'ws1ae',
    round: START,
    passesList: (s) => !s.StrictAetComparison,
    allows: ALLOWS_ALL,
  },
  {
    case: 'mute: listed, AllowEcho and AllowFind false',
    aet: 'MUTEAE',
    round: START,
    passesList: () => true,
    allows: { echo: false, find: false, store: true },
  },
  {
    case: 'far: listed, Host 127.0.0.2',
    aet: 'FARAE',
    round: START,
    passesList: (s) => !s.DicomCheckModalityHost,
    allows: ALLOWS_ALL,
  },
  {
    case: 'TWINAE: AET of twin-listed (listed, Host 127.0.0.2) and twin-other (not listed, Host 127.0.0.1)',
    aet: 'TWINAE',
    round: START,
    passesList: (s) => !s.DicomCheckModalityHost,
    allows: ALLOWS_ALL,
  },
  { case: 'ws2: known modality, not listed', aet: 'WS2AE', round: START, passesList: () => false },
  { case: 'unknown AET', aet: 'STRANGER', round: START, passesList: () => false },
  { case: 'later: listed, not in DicomModalities yet', aet: 'LATERAE', round: START, passesList: () => false },
  { case: 'later: listed, added with PUT /modalities/later', aet: 'LATERAE', round: AFTER, passesList: () => true, allows: ALLOWS_ALL },
  { case: 'ws1: listed, removed with DELETE /modalities/ws1', aet: 'WS1AE', round: AFTER, passesList: () => false },
];

/** What LISTED must answer, from the rules alone (no oracle). */
function listedExpected(caller: CallerCase, settings: Settings, op: Op): string {
  if (!caller.passesList(settings)) return REJECTED;
  if (caller.allows === undefined) throw new Error(`${caller.case}: no Allow* flags`);
  return settings[ALWAYS[op]] || caller.allows[op] ? ACCEPTED : REFUSED;
}

const keyOf = (caller: CallerCase, op: Op) => `${caller.round}: ${caller.case} (calling AET ${caller.aet}), C-${op.toUpperCase()}`;

// ---------------------------------------------------------------------------------------

let workDirectory = '';
/** One instance per caller case and port, so that no store meets an instance stored before. */
const instances = new Map<string, SyntheticInstance>();
const instanceFor = (caller: CallerCase, port: string) => instances.get(`${caller.round}|${caller.case}|${port}`)!;

const storescps = new Set<ChildProcess>();

beforeAll(async () => {
  workDirectory = await mkdtemp(join(tmpdir(), 'access-lists-'));
  let n = 0;
  for (const caller of CALLERS) {
    for (const port of ['main', 'listed', 'open']) {
      n++;
      instances.set(
        `${caller.round}|${caller.case}|${port}`,
        await writeInstance(join(workDirectory, 'callers'), { sopInstanceUid: `1.2.826.0.1.3680043.10.1234.77.1.${n}` }),
      );
    }
  }
});

afterAll(async () => {
  for (const child of storescps) child.kill();
  await stopAllOrthancs();
  if (workDirectory !== '') await rm(workDirectory, { recursive: true, force: true });
});

interface Row {
  settings: string;
  main: Record<string, string>;
  listed: Record<string, string>;
  open: Record<string, string>;
  /** The log after startup, for the warnings. */
  log: string;
}
const rows: Row[] = [];

async function operate(op: Op, port: number, callingAet: string, calledAet: string, instance: SyntheticInstance) {
  const association = { port, callingAet, calledAet };
  switch (op) {
    case 'echo':
      return runTool('echoscu', ['-aet', callingAet, '-aec', calledAet, CALLER_IP, String(port)]);
    case 'find':
      return runTool('findscu', [
        ...['-aet', callingAet, '-aec', calledAet, '-S'],
        ...['-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=NOBODY'],
        ...[CALLER_IP, String(port)],
      ]);
    case 'store':
      return storescu({ ...association, files: [instance.path] });
  }
}

describe('AllowedCallers', () => {
  it.concurrent.for(SETTINGS.map((settings) => [describeSettings(settings), settings] as const))(
    '%s',
    async ([name, settings], { expect }) => {
      const [listedPort, openPort, httpPort, dicomPort] = [await uniquePort(), await uniquePort(), await uniquePort(), await uniquePort()];
      const orthanc = await startOrthanc({
        configuration: {
          HttpPort: httpPort,
          DicomPort: dicomPort,
          DicomAet: MAIN_AET,
          ...settings,
          DicomModalities: MODALITIES,
          ...multitenantSection(
            tenantServer(LISTED_AET, listedPort, { AllowedCallers: ALLOWED_CALLERS }),
            tenantServer(OPEN_AET, openPort),
          ),
        },
        plugins: [PLUGIN_PATH],
        waitForPorts: [listedPort, openPort],
      });
      const row: Row = { settings: name, main: {}, listed: {}, open: {}, log: '' };
      const logStart = orthanc.log().length;

      const callRound = async (round: Round) => {
        for (const caller of CALLERS.filter((c) => c.round === round)) {
          await Promise.all(
            OPS.flatMap((op) =>
              (
                [
                  ['main', orthanc.dicomPort, MAIN_AET],
                  ['listed', listedPort, LISTED_AET],
                  ['open', openPort, OPEN_AET],
                ] as const
              ).map(async ([port, portNumber, calledAet]) => {
                const result = await operate(op, portNumber, caller.aet, calledAet, instanceFor(caller, port));
                row[port][keyOf(caller, op)] = outcomeOf(result);
              }),
            ),
          );
        }
      };

      await callRound(START);
      const put = await orthanc.rest('PUT', '/modalities/later', LATER);
      expect(put.status, `${name}: PUT /modalities/later`).toBe(200);
      const deleted = await orthanc.rest('DELETE', '/modalities/ws1');
      expect(deleted.status, `${name}: DELETE /modalities/ws1`).toBe(200);
      await callRound(AFTER);
      row.log = orthanc.log();
      rows.push(row);

      // A tenant without AllowedCallers: Orthanc's own port, case by case.
      expect(row.open, `${name}: tenant without AllowedCallers (received) vs. Orthanc's port (expected)`).toEqual(row.main);

      // The tenant with AllowedCallers: the rules, and the oracle for callers that pass the list.
      const expected: Record<string, string> = {};
      const oracle: Record<string, string> = {};
      const passing: Record<string, string> = {};
      for (const caller of CALLERS) {
        for (const op of OPS) {
          const key = keyOf(caller, op);
          expected[key] = listedExpected(caller, settings, op);
          if (caller.passesList(settings)) {
            oracle[key] = row.main[key]!;
            passing[key] = row.listed[key]!;
          }
        }
      }
      expect(row.listed, `${name}: tenant with AllowedCallers ${JSON.stringify(ALLOWED_CALLERS)} (received) vs. the rules (expected)`).toEqual(expected);
      expect(passing, `${name}: callers that pass AllowedCallers, tenant (received) vs. Orthanc's port (expected)`).toEqual(oracle);

      // Each list refusal is the plugin's, logged once per association, naming the tenant.
      const listRefusals = CALLERS.filter((caller) => !caller.passesList(settings)).length * OPS.length;
      const listWarnings = () =>
        logMessages(orthanc.log().slice(logStart), 'W').filter(
          (m) => m.startsWith(`${tenantName(0, LISTED_AET)}: `) && / one of the AllowedCallers of AET LISTED\b/.test(m),
        );
      await expect
        .poll(() => listWarnings().length, { timeout: 5_000, message: `${name}: the LISTED tenant's AllowedCallers warnings` })
        .toBe(listRefusals);
      expect(orthanc.log(), `${name}: no JS failure`).not.toMatch(literal('failed in JS'));
    },
  );

  // The outcomes above spelled out, so that a reader sees what the lists mean (and so that
  // the comparisons cannot pass by the ports being wrong in the same trivial way).
  describe('examples', () => {
    const outcome = (settings: Settings, caseName: string, op: Op) => {
      const row = rows.find((r) => r.settings === describeSettings(settings));
      const key = Object.keys(row?.main ?? {}).find((k) => k.includes(caseName) && k.endsWith(`C-${op.toUpperCase()}`));
      if (row === undefined || key === undefined) throw new Error(`no outcome for ${describeSettings(settings)} / ${caseName}`);
      return { main: row.main[key], listed: row.listed[key], open: row.open[key] };
    };
    const all = { ...NONE, ...ALL_ALWAYS };
    const strictHost = { ...NONE, ...ALL_ALWAYS, ...STRICT_AND_HOST };
    const findStore = { ...NONE, DicomAlwaysAllowFind: true, DicomAlwaysAllowStore: true };

    it.each([
      ['unknown AET, every DicomAlwaysAllow* true', 'echo', all, 'unknown AET', ACCEPTED, REJECTED],
      ['unknown AET, every DicomAlwaysAllow* true', 'store', all, 'unknown AET', ACCEPTED, REJECTED],
      ['unknown AET, nothing always allowed', 'echo', NONE, 'unknown AET', REJECTED, REJECTED],
      ['known but unlisted ws2, nothing always allowed', 'find', NONE, 'ws2: known', ACCEPTED, REJECTED],
      ['known but unlisted ws2, every DicomAlwaysAllow* true', 'echo', all, 'ws2: known', ACCEPTED, REJECTED],
      ['listed ws1', 'find', NONE, 'ws1: listed (', ACCEPTED, ACCEPTED],
      ['listed mute, AllowEcho false', 'echo', NONE, 'mute', REFUSED, REFUSED],
      ['listed mute, AllowEcho false, DicomAlwaysAllowEcho true', 'echo', { ...NONE, DicomAlwaysAllowEcho: true }, 'mute', ACCEPTED, ACCEPTED],
      ['listed mute, AllowFind false, DicomAlwaysAllowEcho true', 'find', { ...NONE, DicomAlwaysAllowEcho: true }, 'mute', REFUSED, REFUSED],
      ['listed mute, AllowFind false, DicomAlwaysAllowFind true', 'find', findStore, 'mute', ACCEPTED, ACCEPTED],
      ['listed mute, AllowEcho false, DicomAlwaysAllowFind and Store true', 'echo', findStore, 'mute', REFUSED, REFUSED],
      ['unknown AET, DicomAlwaysAllowFind and Store true', 'echo', findStore, 'unknown AET', REFUSED, REJECTED],
      ['unknown AET, DicomAlwaysAllowFind and Store true', 'find', findStore, 'unknown AET', ACCEPTED, REJECTED],
      ['listed ws1 on its own host, DicomCheckModalityHost true', 'store', strictHost, 'ws1: listed (', ACCEPTED, ACCEPTED],
      ['listed far on 127.0.0.2, DicomCheckModalityHost true, nothing always allowed', 'echo', { ...NONE, ...STRICT_AND_HOST }, 'far', REJECTED, REJECTED],
      ['listed far on 127.0.0.2, DicomCheckModalityHost false', 'echo', NONE, 'far', ACCEPTED, ACCEPTED],
      ['listed far on 127.0.0.2, DicomCheckModalityHost true, always allowed', 'echo', strictHost, 'far', ACCEPTED, REJECTED],
      ['twin AET, listed one elsewhere, DicomCheckModalityHost true, always allowed', 'echo', strictHost, 'TWINAE', ACCEPTED, REJECTED],
      ['ws1 in lower case, StrictAetComparison false', 'echo', NONE, 'ws1: listed, calling AET in lower case', ACCEPTED, ACCEPTED],
      ['ws1 in lower case, StrictAetComparison true, always allowed', 'echo', strictHost, 'ws1: listed, calling AET in lower case', ACCEPTED, REJECTED],
      ['later, before PUT', 'echo', NONE, 'later: listed, not in DicomModalities yet', REJECTED, REJECTED],
      ['later, after PUT', 'echo', NONE, 'later: listed, added with PUT', ACCEPTED, ACCEPTED],
      ['ws1 after DELETE, every DicomAlwaysAllow* true', 'echo', all, 'ws1: listed, removed with DELETE', ACCEPTED, REJECTED],
    ] as const)('%s (C-%s)', (_, op, settings, caseName, main, listed) => {
      expect(outcome(settings, caseName, op)).toEqual({ main, listed, open: main });
    });
  });

  it('warns at startup about each listed name unknown to DicomModalities, and only about those', () => {
    expect(rows).toHaveLength(SETTINGS.length);
    for (const row of rows) {
      const warnings = logMessages(row.log, 'W').filter((m) => m.includes('which is not in DicomModalities'));
      expect(warnings, `${row.settings}: the startup warnings about AllowedCallers`).toEqual([
        `${tenantName(0, LISTED_AET)}: "AllowedCallers" names the modality "later", which is not in DicomModalities (yet); it matches nothing until it is added`,
      ]);
      for (const known of KNOWN_LISTED) {
        expect(row.log, `${row.settings}: no warning about "${known}", which is in DicomModalities`).not.toMatch(
          literal(`names the modality "${known}"`),
        );
      }
    }
  });
});

// ---------------------------------------------------------------------------------------
// AllowedMoveDestinations.

/** A C-MOVE's final status (from movescu -v), e.g. 0x0000, 0x0124, 0xA801. */
function moveStatus(result: DcmtkResult): number | string {
  const output = `${result.stdout}${result.stderr}`;
  const final = output.match(/Received Final Move Response \((.+)\)$/m)?.[1];
  if (final === undefined) return `no final response (code ${result.code}: ${output.trim().replace(/\n/g, ' | ')})`;
  if (final === 'Success') return 0x0000;
  if (final === 'Refused: MoveDestinationUnknown') return 0xa801;
  if (final === 'Failed: UnableToProcess') return 0xc000;
  const unknown = final.match(/Unknown Status: 0x([0-9a-f]+)/i)?.[1];
  return unknown !== undefined ? parseInt(unknown, 16) : final;
}

interface Destination {
  name: string;
  aet: string;
  port: number;
  directory: string;
}

async function startStorescp(destination: Destination): Promise<void> {
  await mkdir(destination.directory, { recursive: true });
  const child = spawn('storescp', ['-aet', destination.aet, '-od', destination.directory, String(destination.port)], {
    stdio: 'ignore',
  });
  storescps.add(child);
  child.once('exit', () => storescps.delete(child));
  for (let i = 0; i < 200 && !(await canConnect(destination.port)); i++) await sleep(25);
}

/** The SOP Instance UIDs received (storescp names its files "<modality>.<SOPInstanceUID>"). */
async function received(destination: Destination): Promise<string[]> {
  return (await readdir(destination.directory)).map((file) => file.replace(/^[A-Za-z]+\./, '')).sort();
}

describe('AllowedMoveDestinations', () => {
  let orthanc: RunningOrthanc;
  let tenantPort: number;
  const destinations: Record<'ok' | 'no' | 'late', Destination> = {} as never;
  let study: SyntheticInstance[] = [];

  beforeAll(async () => {
    tenantPort = await uniquePort();
    for (const [key, name, aet] of [
      ['ok', 'dest-ok', 'DESTOK'],
      ['no', 'dest-no', 'DESTNO'],
      ['late', 'dest-late', 'DESTLATE'],
    ] as const) {
      destinations[key] = { name, aet, port: await uniquePort(), directory: join(workDirectory, 'received', name) };
    }
    await Promise.all(Object.values(destinations).map(startStorescp));
    const modality = (d: Destination) => ({ AET: d.aet, Host: CALLER_IP, Port: d.port });
    orthanc = await startOrthanc({
      configuration: {
        HttpPort: await uniquePort(),
        DicomPort: await uniquePort(),
        DicomAet: MAIN_AET,
        DicomModalities: {
          mover: { AET: 'MOVER', Host: CALLER_IP, Port: 104 },
          'dest-ok': modality(destinations.ok),
          'dest-no': modality(destinations.no),
        },
        ...multitenantSection(
          tenantServer(MOVES_AET, tenantPort, { AllowedMoveDestinations: ['dest-ok', 'dest-late'] }),
        ),
      },
      plugins: [PLUGIN_PATH],
      waitForPorts: [tenantPort],
    });
    // Two instances of one study, stored through the tenant (so they carry its labels).
    const studyUid = '1.2.826.0.1.3680043.10.1234.77.2';
    study = [
      await writeInstance(join(workDirectory, 'move'), { sopInstanceUid: `${studyUid}.1`, studyInstanceUid: studyUid, patientId: 'MOVEP' }),
      await writeInstance(join(workDirectory, 'move'), { sopInstanceUid: `${studyUid}.2`, studyInstanceUid: studyUid, patientId: 'MOVEP' }),
    ];
    const stored = await storescu({ port: tenantPort, callingAet: 'MOVER', calledAet: MOVES_AET, files: study.map((i) => i.path) });
    expect(stored.ok, `storing the study through the tenant: ${stored.stdout}${stored.stderr}`).toBe(true);
  });

  const move = async (port: number, calledAet: string, destinationAet: string) =>
    moveStatus(
      await runTool('movescu', [
        ...['-v', '-aet', 'MOVER', '-aec', calledAet, '-aem', destinationAet, '-S'],
        ...['-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${study[0]!.studyInstanceUid}`],
        ...[CALLER_IP, String(port)],
      ]),
    );
  const studyUids = () => study.map((i) => i.sopInstanceUid).sort();

  it('warns at startup about the listed destination unknown to DicomModalities, and only about it', () => {
    const warnings = logMessages(orthanc.log(), 'W').filter((m) => m.includes('which is not in DicomModalities'));
    expect(warnings, 'the startup warnings about AllowedMoveDestinations').toEqual([
      `${tenantName(0, MOVES_AET)}: "AllowedMoveDestinations" names the modality "dest-late", which is not in DicomModalities (yet); it matches nothing until it is added`,
    ]);
  });

  it('sends to a listed destination', async () => {
    expect(await move(tenantPort, MOVES_AET, 'DESTOK'), 'C-MOVE to the listed dest-ok: status').toBe(0x0000);
    expect(await received(destinations.ok), 'C-MOVE to the listed dest-ok: instances received').toEqual(studyUids());
  });

  it('finds the destination by its AET as the core does (case-insensitive unless StrictAetComparison)', async () => {
    await rm(destinations.ok.directory, { recursive: true, force: true });
    await mkdir(destinations.ok.directory);
    expect(await move(tenantPort, MOVES_AET, 'destok'), 'C-MOVE to "destok" (dest-ok in lower case): status').toBe(0x0000);
    expect(await received(destinations.ok), 'C-MOVE to "destok": instances received by dest-ok').toEqual(studyUids());
  });

  it('refuses a known destination that is not listed with 0x0124, and sends nothing', async () => {
    expect(await move(tenantPort, MOVES_AET, 'DESTNO'), 'C-MOVE to the unlisted dest-no: status').toBe(0x0124);
    await sleep(300);
    expect(await received(destinations.no), 'C-MOVE to the unlisted dest-no: instances received').toEqual([]);
    // dest-no is a working destination: Orthanc's own port sends there.
    expect(await move(orthanc.dicomPort, MAIN_AET, 'DESTNO'), "C-MOVE to dest-no through Orthanc's port: status").toBe(0x0000);
    expect(await received(destinations.no), "C-MOVE to dest-no through Orthanc's port: instances received").toEqual(studyUids());
  });

  it('answers 0xA801 (Move Destination Unknown) for an unknown destination AET', async () => {
    expect(await move(tenantPort, MOVES_AET, 'NOBODY'), 'C-MOVE to the unknown AET NOBODY through the tenant: status').toBe(0xa801);
    // Orthanc's own port refuses it too (Orthanc 1.12.7 answers 0xC000, Unable To Process).
    expect(await move(orthanc.dicomPort, MAIN_AET, 'NOBODY'), "C-MOVE to NOBODY through Orthanc's port: status").not.toBe(0x0000);
  });

  it('sends to a listed name as soon as PUT /modalities adds it (0xA801 before)', async () => {
    expect(await move(tenantPort, MOVES_AET, 'DESTLATE'), 'C-MOVE to DESTLATE before PUT /modalities/dest-late: status').toBe(0xa801);
    const put = await orthanc.rest('PUT', `/modalities/${destinations.late.name}`, {
      AET: destinations.late.aet,
      Host: CALLER_IP,
      Port: destinations.late.port,
    });
    expect(put.status, 'PUT /modalities/dest-late').toBe(200);
    expect(await move(tenantPort, MOVES_AET, 'DESTLATE'), 'C-MOVE to DESTLATE after PUT: status').toBe(0x0000);
    expect(await received(destinations.late), 'C-MOVE to DESTLATE after PUT: instances received').toEqual(studyUids());
    expect(orthanc.log(), 'no JS failure').not.toMatch(literal('failed in JS'));
  });
});
