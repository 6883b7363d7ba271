import { describe, expect, it } from 'vitest';
import type { TenantConfig } from '../../src/configuration.js';
import { DicomStatus, LabelledResources, labelWrites, statusOfFailedStore, type StoredInstance } from '../../src/store.js';

const stored: StoredInstance = {
  ID: 'instance',
  ParentSeries: 'series',
  ParentStudy: 'study',
  ParentPatient: 'patient',
  Status: 'Success',
};

function tenant(labelsStoreLevels: TenantConfig['labelsStoreLevels'], labels = ['a', 'b']) {
  return { labels, labelsStoreLevels };
}

describe('label writes of a store', () => {
  it('cover every configured level with every label, and nothing else', () => {
    expect(labelWrites(tenant(['Study', 'Instance']), stored, new LabelledResources())).toEqual([
      { level: 'Study', resourceId: 'study', label: 'a' },
      { level: 'Study', resourceId: 'study', label: 'b' },
      { level: 'Instance', resourceId: 'instance', label: 'a' },
      { level: 'Instance', resourceId: 'instance', label: 'b' },
    ]);
    expect(labelWrites(tenant(['Patient']), stored, new LabelledResources()).map((write) => write.resourceId)).toEqual([
      'patient',
      'patient',
    ]);
  });

  it('skip what this process already labelled above the instance', () => {
    const labelled = new LabelledResources();
    labelled.add('study', 'a');
    labelled.add('series', 'a');
    labelled.add('series', 'b');
    labelled.add('instance', 'a'); // an instance is always written: each store brings a new one
    expect(labelWrites(tenant(['Study', 'Series', 'Instance']), stored, labelled)).toEqual([
      { level: 'Study', resourceId: 'study', label: 'b' },
      { level: 'Instance', resourceId: 'instance', label: 'a' },
      { level: 'Instance', resourceId: 'instance', label: 'b' },
    ]);
  });
});

describe('what this process knows it labelled', () => {
  it('forgets a deleted resource', () => {
    const labelled = new LabelledResources();
    labelled.add('study', 'a');
    labelled.forget('study');
    expect(labelled.has('study', 'a')).toBe(false);
  });

  it('stays within its capacity, forgetting the oldest first', () => {
    const labelled = new LabelledResources(2);
    labelled.add('first', 'a');
    labelled.add('second', 'a');
    labelled.add('third', 'a');
    expect([labelled.has('first', 'a'), labelled.has('second', 'a'), labelled.has('third', 'a')]).toEqual([false, true, true]);
  });
});

describe('the status of a failed store', () => {
  it('is "cannot understand" for a file Orthanc cannot parse, "out of resources" otherwise (as the core)', () => {
    expect(statusOfFailedStore(Object.assign(new Error('bad'), { orthancCode: 15 }))).toBe(DicomStatus.CannotUnderstand);
    expect(statusOfFailedStore(Object.assign(new Error('full'), { orthancCode: 19 }))).toBe(DicomStatus.RefusedOutOfResources);
    expect(statusOfFailedStore(new Error('other'))).toBe(DicomStatus.RefusedOutOfResources);
  });
});
