import { describe, expect, it } from 'vitest';
import type { TenantConfig } from '../../src/configuration.js';
import { DicomStatus, missingLabels, PerInstanceQueue, statusOfFailedStore, type OrthancIds } from '../../src/store.js';

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
