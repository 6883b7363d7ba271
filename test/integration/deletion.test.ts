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
// from what remains and removes the label. The tests wait for that, then check. The
// instances and the checks are test/support/shared-patient.ts (cluster.test.ts runs them
// across nodes).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storescu } from '../support/dcmtk.js';
import { cfind } from '../support/find-data.js';
import { freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { multitenantSection, PLUGIN_PATH } from '../support/plugin.js';
import {
  deletionUri,
  findingsThroughDeleted,
  findingsThroughRemaining,
  isMarkedMixed,
  MIXED,
  writeSharingPair,
  type Shares,
  type SharingPair,
  type TenantFind,
} from '../support/shared-patient.js';
import { waitUntil } from '../support/wait.js';

const CALLING = 'DELETION_TEST';
const ROOT = '1.2.826.0.1.3680043.10.1234.5151';
const LEVELS = ['Patient', 'Study', 'Series', 'Instance'];

interface Tenant {
  aet: string;
  port: number;
}

interface Scenario {
  key: string;
  title: string;
  /** Who stores first (undefined: Orthanc's own port). */
  firstThrough: 'A' | undefined;
  /** What the second sender shares with the first. */
  shares: Shares;
  /** How the first sender's part is deleted. */
  deleteLevel: 'studies' | 'series' | 'instances';
}

const SCENARIOS: Scenario[] = [
  { key: 'patient', title: 'A\'s study deleted from a patient shared with B', firstThrough: 'A', shares: 'patient', deleteLevel: 'studies' },
  { key: 'study', title: 'A\'s series deleted from a study shared with B', firstThrough: 'A', shares: 'study', deleteLevel: 'series' },
  { key: 'series', title: 'A\'s instance deleted from a series shared with B', firstThrough: 'A', shares: 'series', deleteLevel: 'instances' },
  { key: 'main', title: 'the main port\'s instance deleted from a series shared with B', firstThrough: undefined, shares: 'series', deleteLevel: 'instances' },
];

let orthanc: RunningOrthanc;
let work: string;
let A: Tenant;
let B: Tenant;
const outcomes = new Map<string, { markedWhileShared: boolean; findings: string[] }>();

async function store(through: Tenant | undefined, path: string): Promise<void> {
  const [calledAet, port] = through === undefined ? ['ORTHANC', orthanc.dicomPort] : [through.aet, through.port];
  const result = await storescu({ callingAet: CALLING, calledAet, port, files: [path] });
  if (result.code !== 0) throw new Error(`storescu to ${calledAet} failed: ${result.stderr}`);
}

function findThrough(tenant: Tenant): TenantFind {
  return async (level, keys) => {
    const query = { name: `${level} through ${tenant.aet}`, level, model: 'study' as const, keys };
    const outcome = await cfind(join(work, 'find'), { port: tenant.port, calledAet: tenant.aet, callingAet: CALLING }, query);
    if (outcome.status !== 'Success') throw new Error(`C-FIND ${query.name}: ${outcome.status}`);
    return outcome.answers;
  };
}

/** Every finding through B and A, once the first sender's part is deleted and the patient rebuilt. */
async function check(pair: SharingPair): Promise<string[]> {
  return [...(await findingsThroughRemaining(findThrough(B), pair, 'B')), ...(await findingsThroughDeleted(findThrough(A), pair, 'A'))];
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
    const pair = await writeSharingPair(join(work, scenario.key), { root: `${ROOT}.${index + 1}`, patientId: `DEL-${scenario.key}`, shares: scenario.shares });
    await store(scenario.firstThrough === 'A' ? A : undefined, pair.first.path);
    await store(B, pair.second.path);
    // The durable record of the shared patient, set moments after the second store.
    let markedWhileShared = true;
    await waitUntil(`the patient of ${scenario.key} to be marked ${MIXED}`, () => isMarkedMixed(orthanc, pair)).catch(() => {
      markedWhileShared = false;
    });
    const uri = deletionUri(pair.first, scenario.deleteLevel);
    const deleted = await orthanc.rest('DELETE', uri);
    if (deleted.status !== 200) throw new Error(`DELETE ${uri}: HTTP ${deleted.status}`);
    await waitUntil(`the patient of ${scenario.key} to be rebuilt (label ${MIXED} removed)`, async () => !(await isMarkedMixed(orthanc, pair)));
    outcomes.set(scenario.key, { markedWhileShared, findings: await check(pair) });
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
