// The decisions of a C-STORE (src/store.ts): the plan the native shim follows, and what
// to do with an instance Orthanc already holds.
import { describe, expect, it } from 'vitest';
import type { TenantConfig } from '../../src/configuration.js';
import { decideHeldInstance, DicomStatus, REFUSED_LABEL, storeHeld, storePlan } from '../../src/store.js';
import { contextFor } from '../support/fake-context.js';

function tenant(labelsStoreLevels: TenantConfig['labelsStoreLevels'], labels = ['a', 'b']) {
  return { labels, labelsStoreLevels };
}

const withoutOverwrite = { overwriteInstances: false };
const writes = (plan: ReturnType<typeof storePlan>) => plan.labelWrites.map((write) => `${write.level}:${write.label}`);

describe('the store plan of the native shim', () => {
  it('writes every label at every store level, the deepest level first', () => {
    expect(writes(storePlan(tenant(['Patient', 'Study', 'Series', 'Instance']), withoutOverwrite))).toEqual([
      'Instance:a',
      'Instance:b',
      'Series:a',
      'Series:b',
      'Study:a',
      'Study:b',
      'Patient:a',
      'Patient:b',
    ]);
  });

  it('writes only at the store levels, deepest first whatever their order in the configuration', () => {
    expect(writes(storePlan(tenant(['Patient', 'Series'], ['x']), withoutOverwrite))).toEqual(['Series:x', 'Patient:x']);
    expect(writes(storePlan(tenant(['Study', 'Patient', 'Instance'], ['x']), withoutOverwrite))).toEqual(['Instance:x', 'Study:x', 'Patient:x']);
    expect(writes(storePlan(tenant(['Study'], ['x', 'y', 'z']), withoutOverwrite))).toEqual(['Study:x', 'Study:y', 'Study:z']);
  });

  it('asks before the POST only with OverwriteInstances (a POST would replace what Orthanc holds)', () => {
    expect(storePlan(tenant(['Series', 'Instance']), { overwriteInstances: true }).askBeforePost).toBe(true);
    expect(storePlan(tenant(['Series', 'Instance']), withoutOverwrite).askBeforePost).toBe(false);
  });

  it('answers as Orthanc\'s own C-STORE SCP: Success for a filtered instance, 0xC000 for a file it cannot parse, 0xA700 otherwise', () => {
    expect(storePlan(tenant(['Instance']), withoutOverwrite).statuses).toEqual({
      filteredOut: DicomStatus.Success,
      badFileFormat: DicomStatus.CannotUnderstand,
      failure: DicomStatus.RefusedOutOfResources,
      refused: DicomStatus.RefusedNotAuthorized,
    });
  });

  it('with a failing label write (fault injection), puts a label Orthanc refuses at that position, and nowhere else', () => {
    const levels = tenant(['Study', 'Series', 'Instance']);
    expect(writes(storePlan(levels, { overwriteInstances: false, failingLabelWrite: 2 }))).toEqual([
      'Instance:a',
      `Instance:${REFUSED_LABEL}`,
      'Series:a',
      'Series:b',
      'Study:a',
      'Study:b',
    ]);
    expect(writes(storePlan(levels, { overwriteInstances: false, failingLabelWrite: 'last' })).at(-1)).toBe(`Study:${REFUSED_LABEL}`);
    expect(writes(storePlan(levels, { overwriteInstances: false, failingLabelWrite: 7 })), 'beyond the last write: none fails').toEqual(
      writes(storePlan(levels, withoutOverwrite)),
    );
  });
});

describe('an instance Orthanc already holds', () => {
  const base: TenantConfig = {
    index: 0,
    aet: 'A',
    port: 4243,
    labels: ['a'],
    labelsConstraint: 'All',
    labelsStoreLevels: ['Study', 'Series', 'Instance'],
    foreignInstances: 'Reject',
  };

  it('is labelled when it is the tenant\'s, and stored again (replaced) when asked before the POST', () => {
    expect(decideHeldInstance(base, { labels: { Instance: ['a', 'x'] }, beforePost: false })).toBe('label');
    expect(decideHeldInstance(base, { labels: { Instance: ['a'] }, beforePost: true })).toBe('store');
  });

  it('is refused when it is another sender\'s, or labelled and never replaced with "Share"', () => {
    expect(decideHeldInstance(base, { labels: { Instance: ['b'], Study: ['a'] }, beforePost: false })).toBe('refuse');
    expect(decideHeldInstance(base, { labels: { Instance: [] }, beforePost: true })).toBe('refuse');
    const sharing = { ...base, foreignInstances: 'Share' as const };
    expect(decideHeldInstance(sharing, { labels: { Instance: ['b'] }, beforePost: false })).toBe('label');
    expect(decideHeldInstance(sharing, { labels: { Instance: ['b'] }, beforePost: true })).toBe('label');
  });

  it('is judged at the tenant\'s entitlement level (the lowest of its LabelsStoreLevels)', () => {
    const coarse = { ...base, labelsStoreLevels: ['Study', 'Series'] as TenantConfig['labelsStoreLevels'] };
    expect(decideHeldInstance(coarse, { labels: { Series: ['a'], Study: [] }, beforePost: false })).toBe('label');
    expect(decideHeldInstance(coarse, { labels: { Series: [], Study: ['a'] }, beforePost: false })).toBe('refuse');
  });

  it('is never a None tenant\'s: what it stores carries its labels, which it does not see', () => {
    const none = { ...base, labelsConstraint: 'None' as const };
    expect(decideHeldInstance(none, { labels: { Instance: [] }, beforePost: false })).toBe('refuse');
    expect(decideHeldInstance({ ...none, foreignInstances: 'Share' }, { labels: { Instance: ['a'] }, beforePost: false })).toBe('label');
  });

  it('refused: the handler logs why; shared: the patient is checked for mixed senders', async () => {
    const context = contextFor([base, { ...base, index: 1, aet: 'S', foreignInstances: 'Share' }]);
    const ids = { Patient: 'p', Study: 's', Series: 'r', Instance: 'i' };
    const caller = { remoteIp: '127.0.0.1', remoteAet: 'MOD', calledAet: 'A' };
    expect(await storeHeld({ tenant: 0, ...caller, ids, labels: { Instance: ['b'] }, beforePost: false }, context)).toEqual({ decision: 'refuse' });
    expect(context.logs).toEqual([
      'warning: MultitenantDicom.Servers[0] (AET "A"): refused the instance i sent by MOD: Orthanc already holds it, and it is not this tenant\'s ("ForeignInstances" is "Reject")',
    ]);
    expect(context.noticedPatients).toEqual([]);
    expect(await storeHeld({ tenant: 1, ...caller, ids, labels: { Instance: ['b'] }, beforePost: false }, context)).toEqual({ decision: 'label' });
    expect(context.noticedPatients).toEqual(['p']);
    expect(await storeHeld({ tenant: 0, ...caller, ids, labels: { Instance: ['a'] }, beforePost: false }, context)).toEqual({ decision: 'label' });
    expect(context.noticedPatients, 'its own instance: nothing to check').toEqual(['p']);
  });
});
