import { describe, expect, it } from 'vitest';
import { coarseIsolationWarning, entitledLevel, negatedConstraints, satisfies } from '../../src/entitlement.js';

describe('the entitlement level', () => {
  it('is the instance when it is a store level, else the lowest store level', () => {
    expect(entitledLevel({ labelsStoreLevels: ['Study', 'Series', 'Instance'] })).toBe('Instance');
    expect(entitledLevel({ labelsStoreLevels: ['Patient', 'Study'] })).toBe('Study');
    expect(entitledLevel({ labelsStoreLevels: ['Patient'] })).toBe('Patient');
  });

  it('gives a startup warning when it is not the instance', () => {
    expect(coarseIsolationWarning({ labelsStoreLevels: ['Study', 'Series', 'Instance'] }, 'T')).toBeUndefined();
    expect(coarseIsolationWarning({ labelsStoreLevels: ['Study'] }, 'T')).toBe(
      'T: "LabelsStoreLevels" lacks "Instance", so this tenant\'s isolation is only as fine as the study: every instance of a study it labelled is visible and retrievable through it, whoever sent it',
    );
  });
});

describe('label constraints', () => {
  const tenant = (labelsConstraint: 'All' | 'Any' | 'None') => ({ labels: ['a', 'b'], labelsConstraint });

  it.each([
    ['All', ['a', 'b', 'c'], true],
    ['All', ['a'], false],
    ['Any', ['b'], true],
    ['Any', ['c'], false],
    ['None', ['c'], true],
    ['None', ['a'], false],
  ] as const)('%s of [a, b] with labels %j: %s', (constraint, labels, expected) => {
    expect(satisfies(tenant(constraint), labels)).toBe(expected);
  });

  it('negate into a union of constraints that Orthanc can evaluate', () => {
    expect(negatedConstraints(tenant('Any'))).toEqual([{ Labels: ['a', 'b'], LabelsConstraint: 'None' }]);
    expect(negatedConstraints(tenant('None'))).toEqual([{ Labels: ['a', 'b'], LabelsConstraint: 'Any' }]);
    expect(negatedConstraints(tenant('All'))).toEqual([
      { Labels: ['a'], LabelsConstraint: 'None' },
      { Labels: ['b'], LabelsConstraint: 'None' },
    ]);
  });

  it('negated, exclude exactly what the constraint includes', () => {
    const samples = [[], ['a'], ['b'], ['a', 'b'], ['c'], ['a', 'c']];
    for (const constraint of ['All', 'Any', 'None'] as const) {
      for (const labels of samples) {
        const excluded = negatedConstraints(tenant(constraint)).some((negation) =>
          satisfies({ labels: negation.Labels, labelsConstraint: negation.LabelsConstraint }, labels),
        );
        expect(excluded, `${constraint} ${JSON.stringify(labels)}`).toBe(!satisfies(tenant(constraint), labels));
      }
    }
  });
});
