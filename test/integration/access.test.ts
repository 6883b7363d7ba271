// The oracle test of the access rules: for every combination of Orthanc's access
// options, a tenant server must accept and refuse exactly the callers that Orthanc's own
// DICOM port accepts and refuses, in the same way (association rejected, and why, or
// C-ECHO refused). One Orthanc per combination serves both ports with the same settings
// and the same DicomModalities.
//
// echoscu cannot choose its source address, so every caller comes from 127.0.0.1: a host
// mismatch is obtained by configuring modalities on 127.0.0.2 instead.
import { afterAll, describe, expect, it } from 'vitest';
import { echoOutcome, echoscu } from '../support/dcmtk.js';
import { freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { listeningLine, literal, logMessages, multitenantSection, PLUGIN_PATH, tenantName, tenantServer } from '../support/plugin.js';

afterAll(stopAllOrthancs);

const MAIN_AET = 'ORTHANC';
const TENANT_AET = 'TENANT';
const CALLER_IP = '127.0.0.1';
const OTHER_IP = '127.0.0.2';

// ---------------------------------------------------------------------------------------
// The settings: every combination of the options that change who may talk to Orthanc.

interface Settings {
  DicomAlwaysAllowEcho: boolean;
  /** Also decides the connection filter: with no request type always allowed, unknown AETs are rejected. */
  DicomAlwaysAllowStore: boolean;
  StrictAetComparison: boolean;
  DicomCheckModalityHost: boolean;
  DicomCheckCalledAet: boolean;
}

const OPTIONS: (keyof Settings)[] = [
  'DicomAlwaysAllowEcho',
  'DicomAlwaysAllowStore',
  'StrictAetComparison',
  'DicomCheckModalityHost',
  'DicomCheckCalledAet',
];

const ALL_SETTINGS: Settings[] = OPTIONS.reduce<Partial<Settings>[]>(
  (combinations, option) => combinations.flatMap((c) => [{ ...c, [option]: false }, { ...c, [option]: true }]),
  [{}],
) as Settings[];

const describeSettings = (settings: Settings) => OPTIONS.map((option) => `${option}=${settings[option]}`).join(', ');

// ---------------------------------------------------------------------------------------
// The modalities known at startup, and the callers.

const MODALITIES = {
  echoer: { AET: 'ECHOER', Host: CALLER_IP, Port: 104 }, // every Allow* defaults to true
  silent: { AET: 'SILENT', Host: CALLER_IP, Port: 104, AllowEcho: false },
  faraway: { AET: 'FARAWAY', Host: OTHER_IP, Port: 104 },
  // SHARED1: the first modality by symbolic name (the one the connection filter looks at)
  // has another host; both allow C-ECHO.
  'shared1-a': { AET: 'SHARED1', Host: OTHER_IP, Port: 104 },
  'shared1-b': { AET: 'SHARED1', Host: CALLER_IP, Port: 104 },
  // SHARED2: the modality on the caller's IP allows C-ECHO, the other one does not.
  'shared2-a': { AET: 'SHARED2', Host: CALLER_IP, Port: 104 },
  'shared2-b': { AET: 'SHARED2', Host: OTHER_IP, Port: 104, AllowEcho: false },
  arrayed: ['ARRAYED', CALLER_IP, 104], // the legacy array format
};

/** Changes through the REST API between the two rounds of calls. */
const RUNTIME_CHANGES: [name: string, modality: Record<string, unknown>][] = [
  ['late', { AET: 'LATECOMER', Host: CALLER_IP, Port: 104 }], // added
  ['silent', { AET: 'SILENT', Host: CALLER_IP, Port: 104, AllowEcho: true }], // changed
];

/** Which called AET the caller uses on each port. */
type Called = 'own' | 'wrong' | 'own in lower case' | 'the other server';

function calledAet(called: Called, own: string, other: string): string {
  switch (called) {
    case 'own':
      return own;
    case 'wrong':
      return 'NOBODY';
    case 'own in lower case':
      return own.toLowerCase();
    case 'the other server':
      return other;
  }
}

interface Caller {
  case: string;
  callingAet: string;
  called?: Called;
}

const CALLERS_AT_STARTUP: Caller[] = [
  { case: 'known modality', callingAet: 'ECHOER' },
  { case: 'known modality, calling AET in lower case', callingAet: 'echoer' },
  { case: 'known modality with AllowEcho false', callingAet: 'SILENT' },
  { case: 'unknown AET', callingAet: 'STRANGER' },
  { case: 'known modality whose Host is not the caller IP', callingAet: 'FARAWAY' },
  { case: 'AET of two modalities, the first on another Host, both allow echo', callingAet: 'SHARED1' },
  { case: 'AET of two modalities, the one on the caller IP allows echo, the other not', callingAet: 'SHARED2' },
  { case: 'modality in the array format', callingAet: 'ARRAYED' },
  { case: 'modality not added yet', callingAet: 'LATECOMER' },
  { case: 'known modality, wrong called AET', callingAet: 'ECHOER', called: 'wrong' },
  { case: 'known modality, called AET in lower case', callingAet: 'ECHOER', called: 'own in lower case' },
  { case: 'known modality, called AET of the other server', callingAet: 'ECHOER', called: 'the other server' },
];

const CALLERS_AFTER_CHANGES: Caller[] = [
  { case: 'modality added with PUT /modalities/late', callingAet: 'LATECOMER' },
  { case: 'modality changed with PUT /modalities/silent to AllowEcho true', callingAet: 'SILENT' },
  { case: 'modality added with PUT, calling AET in lower case', callingAet: 'latecomer' },
];

// ---------------------------------------------------------------------------------------

type Outcomes = Record<string, string>;

interface Comparison {
  settings: string;
  main: Outcomes;
  tenant: Outcomes;
}

const comparisons: Comparison[] = [];

/** The outcome of each caller on Orthanc's port and on the tenant's port, keyed by case. */
async function callBoth(orthanc: RunningOrthanc, tenantPort: number, callers: Caller[], round: string) {
  const main: Outcomes = {};
  const tenant: Outcomes = {};
  for (const caller of callers) {
    const called = caller.called ?? 'own';
    const key = `${round}: ${caller.case} (calling AET ${caller.callingAet}, called AET: ${called})`;
    const [onMain, onTenant] = await Promise.all([
      echoscu({ port: orthanc.dicomPort, callingAet: caller.callingAet, calledAet: calledAet(called, MAIN_AET, TENANT_AET) }),
      echoscu({ port: tenantPort, callingAet: caller.callingAet, calledAet: calledAet(called, TENANT_AET, MAIN_AET) }),
    ]);
    main[key] = echoOutcome(onMain);
    tenant[key] = echoOutcome(onTenant);
  }
  return { main, tenant };
}

/** Refusals that the plugin's filters decide (and log), as opposed to the called-AET check of the framework. */
const FILTER_REFUSALS = new Set(['echo refused', 'association rejected (Calling AE Title Not Recognized)']);

/** The calling AET of a case key (see callBoth). */
const callingAetOf = (key: string) => key.match(/\(calling AET (\S+), called AET: /)![1]!;

/**
 * The caller a refusal warning names: the plugin's reasons (as Orthanc's) name it as
 * `Modality "X" on IP`, `AET "X" to AET`, `AET X on IP` or `AET "X" on IP`.
 */
const callerNamed = (message: string) => message.match(/(?:Modality|AET) "?([^" ]+)"? (?:on IP|to AET)/)?.[1] ?? '(no caller named)';

/** How many times each calling AET appears, sorted by AET. */
function countByAet(aets: string[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const aet of aets) counts.set(aet, (counts.get(aet) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The calling AET of the association that marks the end of the calls in Orthanc's log. */
const END_MARK_AET = 'END_OF_CALLS';

describe('a tenant server accepts and refuses the same callers as Orthanc\'s own DICOM port', () => {
  it.concurrent.for(ALL_SETTINGS.map((settings) => [describeSettings(settings), settings] as const))(
    '%s',
    async ([name, settings], { expect }) => {
      const tenantPort = await freePort();
      const orthanc = await startOrthanc({
        configuration: {
          DicomAet: MAIN_AET,
          ...settings,
          DicomModalities: MODALITIES,
          ...multitenantSection(tenantServer(TENANT_AET, tenantPort)),
        },
        plugins: [PLUGIN_PATH],
        waitForPorts: [tenantPort],
      });
      // The tenant's port may accept connections before its startup warning ("listening on
      // port", which names the tenant) is in the log we read: count from the end of that line.
      const listening = await orthanc.waitForLog(literal(listeningLine(0, TENANT_AET, tenantPort)), 30_000);
      const logStart = listening.index! + listening[0].length;

      const atStartup = await callBoth(orthanc, tenantPort, CALLERS_AT_STARTUP, 'at startup');
      for (const [modality, parameters] of RUNTIME_CHANGES) {
        const put = await orthanc.rest('PUT', `/modalities/${modality}`, parameters);
        expect(put.status, `${name}: PUT /modalities/${modality}`).toBe(200);
      }
      const afterChanges = await callBoth(orthanc, tenantPort, CALLERS_AFTER_CHANGES, 'after PUT');

      const main = { ...atStartup.main, ...afterChanges.main };
      const tenant = { ...atStartup.tenant, ...afterChanges.tenant };
      comparisons.push({ settings: name, main, tenant });

      // The oracle: same outcome, case by case (a failure shows the differing cases by name).
      expect(tenant, `${name}: outcomes on the tenant port (received) vs. Orthanc's port (expected)`).toEqual(main);

      // Each refusal decided by the plugin is logged as one warning naming the tenant and the
      // caller, before the caller gets its answer. Orthanc writes its whole log to one stream
      // in order: once an association opened after every call shows in the log, every
      // warning of the calls is there too.
      const endMark = await echoscu({ port: orthanc.dicomPort, callingAet: END_MARK_AET, calledAet: MAIN_AET });
      const marked = await orthanc.waitForLog(literal(`Association Received from AET ${END_MARK_AET} `), 30_000, logStart);
      const calls = orthanc.log().slice(logStart, logStart + marked.index!).replace(/[^\n]*$/, ''); // up to the mark's line
      const warnings = logMessages(calls, 'W').filter((m) => m.startsWith(`${tenantName(0, TENANT_AET)}: `));
      const refusedCallers = Object.entries(tenant)
        .filter(([, outcome]) => FILTER_REFUSALS.has(outcome))
        .map(([key]) => callingAetOf(key));
      expect(
        countByAet(warnings.map(callerNamed)),
        `${name}: the tenant's warnings, by calling AET (end mark: ${echoOutcome(endMark)}):\n${warnings.join('\n')}`,
      ).toEqual(countByAet(refusedCallers));
      expect(orthanc.log(), `${name}: no JS failure`).not.toMatch(literal('failed in JS'));
    },
  );

  it('covers every kind of outcome, on both ports', () => {
    expect(comparisons).toHaveLength(ALL_SETTINGS.length);
    const seen = new Set(comparisons.flatMap((c) => [...Object.values(c.main), ...Object.values(c.tenant)]));
    expect([...seen].sort()).toEqual(
      [
        'accepted',
        'association rejected (Called AE Title Not Recognized)',
        'association rejected (Calling AE Title Not Recognized)',
        'echo refused',
      ].sort(),
    );
  });
});

// A few outcomes spelled out, so that a reader sees what the settings mean (and so that the
// comparison cannot pass by both ports being wrong in the same trivial way).
describe('examples of the rules (Orthanc\'s port and the tenant port alike)', () => {
  const outcomeOf = (settings: Partial<Settings>, caseName: string) => {
    const wanted = describeSettings({
      DicomAlwaysAllowEcho: false,
      DicomAlwaysAllowStore: false,
      StrictAetComparison: false,
      DicomCheckModalityHost: false,
      DicomCheckCalledAet: false,
      ...settings,
    });
    const comparison = comparisons.find((c) => c.settings === wanted);
    const key = Object.keys(comparison?.main ?? {}).find((k) => k.includes(caseName));
    if (comparison === undefined || key === undefined) throw new Error(`no outcome for ${wanted} / ${caseName}`);
    return { main: comparison.main[key], tenant: comparison.tenant[key] };
  };
  const both = (outcome: string) => ({ main: outcome, tenant: outcome });

  it.each([
    [{ DicomAlwaysAllowEcho: true }, 'at startup: unknown AET', 'accepted'],
    [{ DicomAlwaysAllowStore: true }, 'at startup: unknown AET', 'echo refused'],
    [{}, 'at startup: unknown AET', 'association rejected (Calling AE Title Not Recognized)'],
    [{}, 'at startup: known modality with AllowEcho false', 'echo refused'],
    [{}, 'after PUT: modality changed with PUT /modalities/silent', 'accepted'],
    [{}, 'at startup: modality not added yet', 'association rejected (Calling AE Title Not Recognized)'],
    [{}, 'after PUT: modality added with PUT /modalities/late', 'accepted'],
    [{}, 'at startup: known modality, calling AET in lower case', 'accepted'],
    [{ StrictAetComparison: true }, 'at startup: known modality, calling AET in lower case', 'association rejected (Calling AE Title Not Recognized)'],
    [{ DicomCheckModalityHost: true }, 'at startup: known modality whose Host', 'association rejected (Calling AE Title Not Recognized)'],
    [{ DicomCheckModalityHost: true, DicomAlwaysAllowStore: true }, 'at startup: known modality whose Host', 'echo refused'],
    [{ DicomCheckModalityHost: true }, 'at startup: AET of two modalities, the first on another Host', 'association rejected (Calling AE Title Not Recognized)'],
    [{ DicomCheckModalityHost: true }, 'at startup: AET of two modalities, the one on the caller IP', 'accepted'],
    [{}, 'at startup: AET of two modalities, the one on the caller IP', 'echo refused'],
    [{ DicomCheckCalledAet: true }, 'at startup: known modality, wrong called AET', 'association rejected (Called AE Title Not Recognized)'],
    [{ DicomCheckCalledAet: false }, 'at startup: known modality, wrong called AET', 'accepted'],
    [{ DicomCheckCalledAet: true }, 'at startup: known modality, called AET in lower case', 'accepted'],
    [{ DicomCheckCalledAet: true, StrictAetComparison: true }, 'at startup: known modality, called AET in lower case', 'association rejected (Called AE Title Not Recognized)'],
    [{ DicomCheckCalledAet: true }, 'at startup: known modality, called AET of the other server', 'association rejected (Called AE Title Not Recognized)'],
  ] as const)('%j, %s: %s', (settings, caseName, expected) => {
    expect(outcomeOf(settings, caseName)).toEqual(both(expected));
  });
});
