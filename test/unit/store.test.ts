import { describe, expect, it } from 'vitest';
import type { TenantConfig } from '../../src/configuration.js';
import {
  DicomStatus,
  missingLabels,
  PerInstanceQueue,
  statusOfFailedStore,
  storePlan,
  type OrthancIds,
} from '../../src/store.js';

const ids: OrthancIds = { Patient: 'patient', Study: 'study', Series: 'series', Instance: 'instance' };

function tenant(labelsStoreLevels: TenantConfig['labelsStoreLevels'], labels = ['a', 'b']) {
  return { labels, labelsStoreLevels };
}

describe('the labels a store adds', () => {
  it('are every label at every configured level, nothing elsewhere', () => {
    expect(missingLabels(tenant(['Study', 'Instance']), ids, {})).toEqual([
      { level: 'Study', resourceId: 'study', label: 'a' },
      { level: 'Study', resourceId: 'study', label: 'b' },
      { level: 'Instance', resourceId: 'instance', label: 'a' },
      { level: 'Instance', resourceId: 'instance', label: 'b' },
    ]);
    expect(missingLabels(tenant(['Patient']), ids, {}).map((write) => write.resourceId)).toEqual(['patient', 'patient']);
  });

  it('leave out the labels a resource already carries', () => {
    expect(missingLabels(tenant(['Study', 'Series', 'Instance']), ids, { Study: ['a', 'other'], Series: ['a', 'b'] })).toEqual([
      { level: 'Study', resourceId: 'study', label: 'b' },
      { level: 'Instance', resourceId: 'instance', label: 'a' },
      { level: 'Instance', resourceId: 'instance', label: 'b' },
    ]);
  });
});

describe('the store plan of the native shim', () => {
  const withoutOverwrite = { overwriteInstances: false };

  it('writes every label at every store level, the deepest level first, with {Level} placeholders', () => {
    expect(storePlan(tenant(['Patient', 'Study', 'Series', 'Instance']), withoutOverwrite)).toEqual({
      absentBeforePost: '',
      labelUris: [
        '/instances/{Instance}/labels/a',
        '/instances/{Instance}/labels/b',
        '/series/{Series}/labels/a',
        '/series/{Series}/labels/b',
        '/studies/{Study}/labels/a',
        '/studies/{Study}/labels/b',
        '/patients/{Patient}/labels/a',
        '/patients/{Patient}/labels/b',
      ],
    });
  });

  it('writes only at the store levels, deepest first whatever their order in the configuration', () => {
    expect(storePlan(tenant(['Patient', 'Series'], ['x']), withoutOverwrite).labelUris).toEqual([
      '/series/{Series}/labels/x',
      '/patients/{Patient}/labels/x',
    ]);
    expect(storePlan(tenant(['Study', 'Patient', 'Instance'], ['x']), withoutOverwrite).labelUris).toEqual([
      '/instances/{Instance}/labels/x',
      '/studies/{Study}/labels/x',
      '/patients/{Patient}/labels/x',
    ]);
    expect(storePlan(tenant(['Study'], ['x', 'y', 'z']), withoutOverwrite).labelUris).toEqual([
      '/studies/{Study}/labels/x',
      '/studies/{Study}/labels/y',
      '/studies/{Study}/labels/z',
    ]);
  });

  it('checks that the instance is absent before the POST only with OverwriteInstances', () => {
    expect(storePlan(tenant(['Series', 'Instance']), { overwriteInstances: true })).toEqual({
      absentBeforePost: '/instances/{Instance}/labels',
      labelUris: [
        '/instances/{Instance}/labels/a',
        '/instances/{Instance}/labels/b',
        '/series/{Series}/labels/a',
        '/series/{Series}/labels/b',
      ],
    });
    expect(storePlan(tenant(['Study']), { overwriteInstances: true }).absentBeforePost).toBe('/instances/{Instance}/labels');
    expect(storePlan(tenant(['Series', 'Instance']), { overwriteInstances: false }).absentBeforePost).toBe('');
    expect(storePlan(tenant(['Series', 'Instance']), { overwriteInstances: false, failParentLabelWrites: false })).toEqual(
      storePlan(tenant(['Series', 'Instance']), withoutOverwrite),
    );
  });

  it('with failParentLabelWrites, keeps the instance writes, then writes an invalid label once at the first parent level', () => {
    expect(storePlan(tenant(['Study', 'Series', 'Instance']), { overwriteInstances: false, failParentLabelWrites: true })).toEqual({
      absentBeforePost: '',
      labelUris: ['/instances/{Instance}/labels/a', '/instances/{Instance}/labels/b', '/series/{Series}/labels/fault!injected'],
    });
    expect(storePlan(tenant(['Patient', 'Study'], ['x']), { overwriteInstances: true, failParentLabelWrites: true })).toEqual({
      absentBeforePost: '/instances/{Instance}/labels',
      labelUris: ['/studies/{Study}/labels/fault!injected'],
    });
  });

  it('with failParentLabelWrites and no parent level, writes only the instance labels', () => {
    expect(storePlan(tenant(['Instance']), { overwriteInstances: false, failParentLabelWrites: true })).toEqual({
      absentBeforePost: '',
      labelUris: ['/instances/{Instance}/labels/a', '/instances/{Instance}/labels/b'],
    });
  });
});

describe('stores of one instance', () => {
  it('run one after the other, even when one fails; other instances do not wait', async () => {
    const queue = new PerInstanceQueue();
    const events: string[] = [];
    let releaseFirst!: () => void;
    const first = queue.run('x', async () => {
      events.push('first starts');
      await new Promise<void>((resolve) => (releaseFirst = resolve));
      events.push('first fails');
      throw new Error('first');
    });
    const second = queue.run('x', async () => {
      events.push('second runs');
      return 2;
    });
    const other = queue.run('y', async () => {
      events.push('other runs');
      return 3;
    });
    expect(await other).toBe(3);
    releaseFirst();
    await expect(first).rejects.toThrow('first');
    expect(await second).toBe(2);
    expect(events).toEqual(['first starts', 'other runs', 'first fails', 'second runs']);
  });
});

describe('the status of a failed store', () => {
  it('is "cannot understand" for a file Orthanc cannot parse, "out of resources" otherwise (as the core)', () => {
    expect(statusOfFailedStore(Object.assign(new Error('bad'), { orthancCode: 15 }))).toBe(DicomStatus.CannotUnderstand);
    expect(statusOfFailedStore(Object.assign(new Error('full'), { orthancCode: 19 }))).toBe(DicomStatus.RefusedOutOfResources);
    expect(statusOfFailedStore(new Error('other'))).toBe(DicomStatus.RefusedOutOfResources);
  });
});
