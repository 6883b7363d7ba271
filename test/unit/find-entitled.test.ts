import { describe, expect, it } from 'vitest';
import { matchesConstraint, tagsForEntitlement } from '../../src/find-entitled.js';
import type { QueryElement } from '../../src/query.js';

const constraint = (tag: string, vr: string, value: string): QueryElement => ({ tag, vr, value });
const insensitivePN = { caseSensitivePN: false };

describe('matching a shared resource against the query, with the tenant\'s own values', () => {
  it('handles lists, ranges, wildcards and equality', () => {
    expect(matchesConstraint(constraint('0020,000d', 'UI', '1.2\\1.3'), '1.3', insensitivePN)).toBe(true);
    expect(matchesConstraint(constraint('0020,000d', 'UI', '1.2\\1.3'), '1.4', insensitivePN)).toBe(false);
    expect(matchesConstraint(constraint('0008,0020', 'DA', '20200101-20201231'), '20200615', insensitivePN)).toBe(true);
    expect(matchesConstraint(constraint('0008,0020', 'DA', '20200101-'), '20191231', insensitivePN)).toBe(false);
    expect(matchesConstraint(constraint('0008,0020', 'DA', '-20200101'), '20191231', insensitivePN)).toBe(true);
    expect(matchesConstraint(constraint('0008,1030', 'LO', 'Head*'), 'Head CT', insensitivePN)).toBe(true);
    expect(matchesConstraint(constraint('0008,1030', 'LO', 'head*'), 'Head CT', insensitivePN)).toBe(false);
    expect(matchesConstraint(constraint('0008,0050', 'SH', 'A1'), 'A1', insensitivePN)).toBe(true);
  });

  it('matches PN without case nor accents, unless CaseSensitivePN', () => {
    expect(matchesConstraint(constraint('0010,0010', 'PN', 'muller*'), 'Müller^Jürgen', insensitivePN)).toBe(true);
    expect(matchesConstraint(constraint('0010,0010', 'PN', 'muller*'), 'Müller^Jürgen', { caseSensitivePN: true })).toBe(false);
  });

  it('matches ModalitiesInStudy when one wanted modality is there', () => {
    expect(matchesConstraint(constraint('0008,0061', 'CS', 'CT\\MR'), 'MR\\US', insensitivePN)).toBe(true);
    expect(matchesConstraint(constraint('0008,0061', 'CS', 'CT'), 'MR\\US', insensitivePN)).toBe(false);
  });
});

describe('entitlement in C-FIND', () => {
  it('asks for the PatientID, the unique key of the query level, and of the entitlement level when it is above', () => {
    expect(tagsForEntitlement('Study', { labelsStoreLevels: ['Study', 'Series', 'Instance'] })).toEqual(['0010,0020', '0020,000d']);
    expect(tagsForEntitlement('Instance', { labelsStoreLevels: ['Study'] })).toEqual(['0010,0020', '0008,0018', '0020,000d']);
    expect(tagsForEntitlement('Patient', { labelsStoreLevels: ['Patient'] })).toEqual(['0010,0020']);
  });

});
