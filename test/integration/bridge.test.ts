// The bridge between Orthanc's threads and JavaScript fails fast and stays bounded
// (native/js_dispatcher.cpp, src/orthanc.ts), shown inside Orthanc with fault injection:
// - a handler that never answers makes its request fail at the request's deadline
//   (DicomScpTimeout), while another tenant keeps answering C-ECHO and C-FIND;
// - a handler that holds the JavaScript thread is noticed by the watchdog, logged once
//   with what is stuck, and every request fails at once until JavaScript answers again;
// - a C-MOVE of 5,000 instances, whose planning reads every instance, runs only a few
//   REST calls at a time: another tenant's C-FIND is answered while it plans.
// A permission JavaScript granted is remembered by the shim, without a REST call per
// command, until Orthanc signals that its modalities changed.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeInstance } from '../support/dataset.js';
import { echoscu, runTool, type DcmtkResult } from '../support/dcmtk.js';
import { canConnect, freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { literal, multitenantSection, PLUGIN_PATH, tenantName } from '../support/plugin.js';

const CALLING = 'BRIDGE_TEST';
const modalities = (extra: Record<string, unknown> = {}) => ({
  DicomModalities: { tester: { AET: CALLING, Host: '127.0.0.1', Port: 104 }, ...extra },
});

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'bridge-test-'));
});

afterAll(async () => {
  await stopAllOrthancs();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

interface Tenant {
  aet: string;
  port: number;
}

async function startTwo(names: [string, string], configuration: Record<string, unknown>, faults: string) {
  const tenants: Tenant[] = [];
  for (const aet of names) tenants.push({ aet, port: await freePort() });
  const orthanc = await startOrthanc({
    configuration: {
      HttpPort: await freePort(),
      DicomPort: await freePort(),
      ...modalities(),
      ...configuration,
      ...multitenantSection(...tenants.map((tenant) => ({ AET: tenant.aet, Port: tenant.port, Labels: [tenant.aet.toLowerCase()] }))),
    },
    plugins: [PLUGIN_PATH],
    env: { MTD_FAULT_INJECTION: faults },
    waitForPorts: tenants.map((tenant) => tenant.port),
  });
  return { orthanc, tenants };
}

const echo = (tenant: Tenant) => echoscu({ callingAet: CALLING, calledAet: tenant.aet, port: tenant.port });
const findStudies = (tenant: Tenant, timeoutMs = 120_000) =>
  runTool(
    'findscu',
    ['-v', '-S', '-aet', CALLING, '-aec', tenant.aet, '-k', 'QueryRetrieveLevel=STUDY', '-k', 'StudyInstanceUID', '127.0.0.1', String(tenant.port)],
    timeoutMs,
  );

/** The status of the final C-FIND response, as findscu -v names it; undefined without one. */
const finalStatus = (result: DcmtkResult) => (result.stdout + result.stderr).match(/Received Final Find Response \(([^)]*)\)/)?.[1];
/** Whether the C-FIND was answered with a failure status (not cut short by findscu's own timeout). */
const failedByStatus = (result: DcmtkResult) => /^(Failed|Refused)/.test(finalStatus(result) ?? '');
const succeeded = (result: DcmtkResult) => finalStatus(result) === 'Success';

describe('a permission remembered until Orthanc signals that its modalities changed', () => {
  let orthanc: RunningOrthanc;
  let tenant: Tenant;
  const MODALITIES_READ = /REST GET call on URI \/modalities\?expand/;
  const tester = (allowFind: boolean) => ({ AET: CALLING, Host: '127.0.0.1', Port: 104, AllowFind: allowFind });

  beforeAll(async () => {
    const started = await startTwo(['REMEMBERS', 'UNUSED'], { DicomAlwaysAllowFind: false }, '');
    orthanc = started.orthanc;
    tenant = started.tenants[0]!;
    expect(succeeded(await findStudies(tenant))).toBe(true);
  }, 120_000);

  it('later commands read no list of modalities: neither JavaScript nor the shim asks Orthanc', async () => {
    const since = orthanc.log().length;
    for (let round = 0; round < 3; round++) expect(succeeded(await findStudies(tenant))).toBe(true);
    expect(orthanc.log().slice(since)).not.toMatch(MODALITIES_READ);
  });

  it('a modality changed through REST applies to the next command, and its new permission is remembered', async () => {
    expect((await orthanc.rest('PUT', '/modalities/tester', tester(false))).status).toBe(200);
    expect(succeeded(await findStudies(tenant))).toBe(false);
    expect((await orthanc.rest('PUT', '/modalities/tester', tester(true))).status).toBe(200);
    expect(succeeded(await findStudies(tenant))).toBe(true);
    const since = orthanc.log().length;
    expect(succeeded(await findStudies(tenant))).toBe(true);
    expect(orthanc.log().slice(since)).not.toMatch(MODALITIES_READ);
  });

  it('a modality deleted through REST is refused at the next command', async () => {
    expect((await orthanc.rest('DELETE', '/modalities/tester')).status).toBe(200);
    expect(succeeded(await findStudies(tenant))).toBe(false);
  });
});

describe('a handler that never answers (MTD_FAULT_INJECTION=hang:find@HUNG)', () => {
  let orthanc: RunningOrthanc;
  let hung: Tenant;
  let other: Tenant;
  const order: string[] = [];
  let hungResult: DcmtkResult;
  const otherResults: DcmtkResult[] = [];

  beforeAll(async () => {
    const started = await startTwo(['HUNG', 'OTHER'], { DicomScpTimeout: 20 }, 'hang:find@HUNG');
    orthanc = started.orthanc;
    [hung, other] = started.tenants as [Tenant, Tenant];
    const since = orthanc.log().length;
    const hanging = findStudies(hung).then((result) => {
      order.push('HUNG C-FIND answered');
      hungResult = result;
    });
    // The hung request is in JavaScript: its association is open and its find asked.
    await orthanc.waitForLog(/Plugin making REST GET call on URI \/modalities\?expand/, 30_000, since);
    for (let round = 0; round < 3; round++) {
      otherResults.push(await echo(other), await findStudies(other));
    }
    order.push('OTHER answered three C-ECHO and three C-FIND');
    await hanging;
  }, 180_000);

  it('fails at the request\'s deadline with a C-FIND failure status, and says why in the log', () => {
    expect(failedByStatus(hungResult), hungResult.stdout + hungResult.stderr).toBe(true);
    expect(orthanc.log()).toMatch(literal(`${tenantName(0, 'HUNG')}: "find" from ${CALLING} failed in JS, the request is refused: JS did not answer "find" before its deadline`));
  });

  it('meanwhile, another tenant answers C-ECHO and C-FIND', () => {
    expect(otherResults.map((result) => result.code)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(otherResults.filter((_, index) => index % 2 === 1).every(succeeded)).toBe(true);
    expect(order).toEqual(['OTHER answered three C-ECHO and three C-FIND', 'HUNG C-FIND answered']);
  });

  it('afterwards, the abandoned call does not stand in the way: the other tenant still answers', async () => {
    expect(succeeded(await findStudies(other))).toBe(true);
  });
});

describe('a handler that holds the JavaScript thread (MTD_FAULT_INJECTION=block:find@BLOCKED:25000)', () => {
  let orthanc: RunningOrthanc;
  let blocked: Tenant;
  let other: Tenant;
  let duringBlock: DcmtkResult;
  let answeredBeforeJavaScriptRanAgain = false;

  beforeAll(async () => {
    const started = await startTwo(['BLOCKED', 'OTHER'], { DicomScpTimeout: 60 }, 'block:find@BLOCKED:25000');
    orthanc = started.orthanc;
    [blocked, other] = started.tenants as [Tenant, Tenant];
    // The other tenant's permissions are remembered: its next associations need no JavaScript.
    expect((await echo(other)).code).toBe(0);
    expect(succeeded(await findStudies(other))).toBe(true);
    const since = orthanc.log().length;
    const blocking = findStudies(blocked);
    await orthanc.waitForLog(/Plugin making REST GET call on URI \/modalities\?expand/, 30_000, since);
    // Asked while the JavaScript thread is held: fails once the watchdog notices, not after the block.
    duringBlock = await findStudies(other);
    answeredBeforeJavaScriptRanAgain = !orthanc.log().includes('the JavaScript side takes requests again');
    await blocking;
  }, 180_000);

  it('the watchdog logs once that JavaScript takes no request, naming what it runs', () => {
    const lines = orthanc.log().split('\n').filter((line) => line.includes('the JavaScript side has taken no request for'));
    expect(lines, orthanc.log().slice(-3000)).toHaveLength(1);
    expect(lines[0]).toMatch(/it has been running "find" for \d+ s\); every waiting and new request of every tenant fails at once until it answers again/);
  });

  it('a request of another tenant fails with a status as soon as the stall is noticed, before the block ends', () => {
    expect(failedByStatus(duringBlock), duringBlock.stdout + duringBlock.stderr).toBe(true);
    expect(answeredBeforeJavaScriptRanAgain, 'answered before the JavaScript thread took requests again').toBe(true);
  });

  it('once JavaScript runs again, it is logged and requests are answered again', async () => {
    await orthanc.waitForLog(/multitenant-dicom: the JavaScript side takes requests again/, 60_000);
    expect(succeeded(await findStudies(other))).toBe(true);
  });
});

describe('a C-MOVE of 5,000 instances through one tenant, and another tenant\'s C-FIND', () => {
  const INSTANCES = 5000;
  let orthanc: RunningOrthanc;
  let mover: Tenant;
  let other: Tenant;
  let destination: ChildProcess;
  let destinationDirectory: string;
  const order: string[] = [];
  let otherFind: DcmtkResult;
  let moveResult: DcmtkResult;
  let tagReadsBeforeTheFind = 0;

  beforeAll(async () => {
    destinationDirectory = join(work, 'destination');
    await mkdir(destinationDirectory, { recursive: true });
    const destinationPort = await freePort();
    destination = spawn('storescp', ['-aet', 'BRIDGE_DEST', '-od', destinationDirectory, String(destinationPort)], { stdio: 'ignore' });
    while (!(await canConnect(destinationPort))) await sleep(20);

    mover = { aet: 'MOVER', port: await freePort() };
    other = { aet: 'OTHER', port: await freePort() };
    orthanc = await startOrthanc({
      configuration: {
        HttpPort: await freePort(),
        DicomPort: await freePort(),
        // The move's planning reads 5,000 instances' tags within DicomScpTimeout: on a loaded
        // 2-core machine that took more than the default 30 s (the move then failed, 0xC000).
        // This test is about the other tenant's C-FIND, not about the deadline.
        DicomScpTimeout: 300,
        ...modalities({ destination: { AET: 'BRIDGE_DEST', Host: '127.0.0.1', Port: destinationPort } }),
        ...multitenantSection(
          { AET: mover.aet, Port: mover.port, Labels: ['mover'], LabelsStoreLevels: ['Study', 'Series'] },
          { AET: other.aet, Port: other.port, Labels: ['other'] },
        ),
      },
      plugins: [PLUGIN_PATH],
      waitForPorts: [mover.port, other.port],
    });

    // The tenant's data, uploaded and labelled through the REST API (faster than 5,000
    // C-STOREs): one study of 5,000 instances. Their files differ by their SOPInstanceUID
    // only, all of the same length, so one file is written and its UID rewritten in place.
    const uid = (index: number) => `1.2.826.0.1.3680043.10.1234.6161.3.${10_000 + index}`;
    const template = await writeInstance(join(work, 'template'), {
      patientId: 'BRIDGE-P',
      studyInstanceUid: '1.2.826.0.1.3680043.10.1234.6161.1',
      seriesInstanceUid: '1.2.826.0.1.3680043.10.1234.6161.2',
      sopInstanceUid: uid(0),
      accessionNumber: 'BRIDGE-ACC',
    });
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(template.path);
    const places: number[] = []; // the file meta's MediaStorageSOPInstanceUID, and the dataset's
    for (let at = bytes.indexOf(uid(0)); at >= 0; at = bytes.indexOf(uid(0), at + 1)) places.push(at);
    const upload = async (index: number) => {
      const copy = Buffer.from(bytes);
      for (const at of places) copy.write(uid(index), at, 'latin1');
      const stored = await orthanc.rest<{ ParentSeries: string; ParentStudy: string; Status: string }>('POST', '/instances', copy);
      if (stored.status !== 200 || stored.body.Status !== 'Success') throw new Error(`upload ${index}: HTTP ${stored.status}`);
      return stored.body;
    };
    let parents = { ParentSeries: '', ParentStudy: '' };
    for (let start = 0; start < INSTANCES; start += 50) {
      parents = (await Promise.all(Array.from({ length: Math.min(50, INSTANCES - start) }, (_, i) => upload(start + i))))[0]!;
    }
    // MOVER's isolation is as fine as the series (LabelsStoreLevels Study and Series).
    await orthanc.rest('PUT', `/series/${parents.ParentSeries}/labels/mover`, '');
    await orthanc.rest('PUT', `/studies/${parents.ParentStudy}/labels/mover`, '');
    const otherFile = await writeInstance(join(work, 'other'), { patientId: 'BRIDGE-O', sopInstanceUid: '1.2.826.0.1.3680043.10.1234.6161.9.1' });
    const otherStored = await runTool('storescu', ['-aet', CALLING, '-aec', other.aet, '127.0.0.1', String(other.port), otherFile.path]);
    expect(otherStored.code, otherStored.stderr).toBe(0);

    // A move by AccessionNumber reads the AccessionNumber of each of the 5,000 instances while it plans.
    const since = orthanc.log().length;
    const moving = runTool(
      'movescu',
      ['-aet', CALLING, '-aec', mover.aet, '-aem', 'BRIDGE_DEST', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'AccessionNumber=BRIDGE-ACC', '127.0.0.1', String(mover.port)],
      600_000,
    ).then((result) => {
      moveResult = result;
      order.push('C-MOVE done');
    });
    await orthanc.waitForLog(/Plugin making REST GET call on URI \/instances\/[0-9a-f-]+\/tags\?short/, 120_000, since);
    otherFind = await findStudies(other);
    order.push((await readdir(destinationDirectory)).length === 0 ? 'OTHER C-FIND answered while the move plans' : 'OTHER C-FIND answered after the move began to send');
    // How far the move's planning had come when the find was answered (reported, not asserted).
    tagReadsBeforeTheFind = (orthanc.log().slice(since).match(/\/tags\?short/g) ?? []).length;
    await moving;
  }, 900_000);

  afterAll(() => {
    destination?.kill();
  });

  it('the other tenant\'s C-FIND is answered while the move plans, before it sends anything', () => {
    expect(succeeded(otherFind), otherFind.stdout + otherFind.stderr).toBe(true);
    expect(order[0], `tag reads of the move logged by then: ${tagReadsBeforeTheFind} of ${INSTANCES}`).toBe('OTHER C-FIND answered while the move plans');
  });

  it('the move sends all 5,000 instances', async () => {
    expect(moveResult.code, moveResult.stderr.slice(-2000)).toBe(0);
    expect((await readdir(destinationDirectory)).length).toBe(INSTANCES);
  });
});
