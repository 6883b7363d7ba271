// The storeHeld handler (src/store.ts) with a real Mixing over a fake Orthanc: what
// test/unit/store.test.ts leaves out (the decision to store again, the tenants whose
// entitlement is above the instance, and that sharing an instance ends with its patient
// marked "multitenant-mixed").
import { Activity } from '../../src/activity.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfiguration, type TenantConfig } from '../../src/configuration.js';
import { parseFaults } from '../../src/faults.js';
import type { HandlerContext } from '../../src/handler.js';
import type { OrthancIds } from '../../src/dicom.js';
import { MIXED_LABEL, Mixing } from '../../src/mixing.js';
import { Orthanc } from '../../src/orthanc.js';
import { storeHeld } from '../../src/store.js';
import { serverSpecs } from '../../src/lifecycle.js';
import { RuntimeTenants } from '../../src/runtime-tenants.js';
import { GlobalPropertyStore } from '../../src/tenant-store.js';
import { Tenants } from '../../src/tenants.js';
import { FakeOrthanc } from '../support/fake-orthanc.js';

const server = (index: number, overrides: Partial<TenantConfig>): TenantConfig => ({
  index,
  aet: `T${index}`,
  port: 4243 + index,
  labels: ['a'],
  labelsConstraint: 'All',
  labelsStoreLevels: ['Study', 'Series', 'Instance'],
  foreignInstances: 'Reject',
  ...overrides,
});
const OWNER = server(0, {});
const SHARING = server(1, { labels: ['s'], foreignInstances: 'Share' });
const BY_STUDY = server(2, { labelsStoreLevels: ['Study'] });
const NONE_SHARING = server(3, { labels: ['n'], labelsConstraint: 'None', foreignInstances: 'Share' });

let fake: FakeOrthanc;
let context: HandlerContext;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  fake = new FakeOrthanc();
  const orthanc = Orthanc.connect(fake.bridge);
  const tenants = new Tenants();
  tenants.configure({ ...parseConfiguration({}), servers: [OWNER, SHARING, BY_STUDY, NONE_SHARING], sectionPresent: true });
  const faults = parseFaults(undefined);
  const activity = new Activity();
  context = {
    orthanc,
    tenants,
    mixing: new Mixing(orthanc, { info: () => {}, error: () => {} }),
    faults,
    activity,
    runtimeTenants: new RuntimeTenants(tenants, fake.bridge, orthanc, (all) => serverSpecs(all, tenants.dicom, faults.labelWrite), activity, new GlobalPropertyStore(fake.bridge)),
  };
});

afterEach(() => {
  vi.useRealTimers();
});

const held = (tenant: number, labels: Partial<Record<'Study' | 'Series' | 'Instance', string[]>>, beforePost: boolean, ids: OrthancIds) => ({
  tenant,
  remoteIp: '127.0.0.1',
  remoteAet: 'MODALITY',
  calledAet: `T${tenant}`,
  ids,
  labels,
  beforePost,
});

/** The owner's instance that the C-STORE brings again, beside another of the owner's in its series. */
function idsOfHeld(): OrthancIds {
  fake.storeThrough(OWNER, { PatientID: 'P1', StudyInstanceUID: '1.1', SeriesInstanceUID: '1.1.1', SOPInstanceUID: '1.1.1.2' });
  return fake.storeThrough(OWNER, { PatientID: 'P1', StudyInstanceUID: '1.1', SeriesInstanceUID: '1.1.1', SOPInstanceUID: '1.1.1.1' });
}

async function afterMixingDelay(): Promise<void> {
  await vi.advanceTimersByTimeAsync(250);
  await new Promise((resolve) => setImmediate(resolve));
}

describe('an instance Orthanc already holds', () => {
  it('the tenant\'s own, asked before the POST: stored again, and its patient is not checked', async () => {
    expect(await storeHeld(held(0, { Instance: ['a'] }, true, idsOfHeld()), context)).toEqual({ decision: 'store' });
    await afterMixingDelay();

    expect(fake.calls).toEqual([]);
  });

  it('another tenant\'s, with "Share": labelled, and once labelled its patient is marked "multitenant-mixed"', async () => {
    const ids = idsOfHeld();

    expect(await storeHeld(held(1, { Instance: ['a'] }, false, ids), context)).toEqual({ decision: 'label' });
    // What the shim then does: the sharing tenant's labels, on the instance and its parents.
    for (const level of ['Instance', 'Series', 'Study'] as const) fake.addLabel(level, ids[level], 's');
    await afterMixingDelay();

    // The owner's other instance lacks "s": some tenant tells the two apart.
    expect(fake.labelsOf('Patient', ids.Patient)).toEqual([MIXED_LABEL]);
  });

  it('judged at the study for a tenant that labels studies only', async () => {
    const ids = idsOfHeld();
    expect(await storeHeld(held(2, { Study: ['a'], Instance: [] }, false, ids), context), 'its study').toEqual({ decision: 'label' });
    expect(await storeHeld(held(2, { Study: ['b'], Instance: ['a'] }, false, ids), context), 'another study').toEqual({ decision: 'refuse' });
  });

  it('never a "None" tenant\'s: with "Share" it is labelled, and its patient marked', async () => {
    const ids = idsOfHeld();

    expect(await storeHeld(held(3, { Instance: [] }, true, ids), context)).toEqual({ decision: 'label' });
    for (const level of ['Instance', 'Series', 'Study'] as const) fake.addLabel(level, ids[level], 'n');
    await afterMixingDelay();

    expect(fake.labelsOf('Patient', ids.Patient)).toEqual([MIXED_LABEL]);
  });
});
