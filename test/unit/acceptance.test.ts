import { describe, expect, it } from 'vitest';
import { acceptedSopClasses, isAtLeast } from '../../src/acceptance.js';

const DCMTK = ['1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.5.1.4.1.1.4', '1.2.840.10008.5.1.4.1.1.7', '1.2.840.10008.5.1.4.1.1.128'];
const accepted = (configuration: Record<string, unknown>, version = '1.12.7') => acceptedSopClasses(configuration, DCMTK, version);

describe('accepted storage SOP classes', () => {
  it('are every class DCMTK knows by default', () => {
    expect(accepted({})).toEqual(DCMTK);
  });

  it('are the listed ones; a plain UID is taken even if DCMTK does not know it', () => {
    expect(accepted({ AcceptedSopClasses: ['1.2.840.10008.5.1.4.1.1.2', '1.3.12.2.1107.5.9.1'] })).toEqual([
      '1.2.840.10008.5.1.4.1.1.2',
      '1.3.12.2.1107.5.9.1',
    ]);
  });

  it('expand wildcards among the classes DCMTK knows', () => {
    expect(accepted({ AcceptedSopClasses: ['1.2.840.10008.5.1.4.1.1.?'] })).toEqual(DCMTK.slice(0, 3));
  });

  it('leave out the rejected ones, by UID or by wildcard (1.12.7 reads "RejectSopClasses")', () => {
    expect(accepted({ RejectSopClasses: ['1.2.840.10008.5.1.4.1.1.4'] })).toEqual([DCMTK[0], DCMTK[2], DCMTK[3]]);
    expect(accepted({ RejectSopClasses: ['*.1.1.1??'] })).toEqual(DCMTK.slice(0, 3));
    expect(accepted({ RejectedSopClasses: ['1.2.840.10008.5.1.4.1.1.4'] })).toEqual(DCMTK);
  });

  it('read "RejectedSopClasses" from Orthanc 1.12.8, else the old name', () => {
    expect(accepted({ RejectedSopClasses: ['1.2.840.10008.5.1.4.1.1.4'] }, '1.12.8')).toEqual([DCMTK[0], DCMTK[2], DCMTK[3]]);
    expect(accepted({ RejectSopClasses: ['1.2.840.10008.5.1.4.1.1.4'] }, 'mainline')).toEqual([DCMTK[0], DCMTK[2], DCMTK[3]]);
  });

  it('reject by wildcard only classes DCMTK knows: a listed private class stays', () => {
    expect(accepted({ AcceptedSopClasses: ['1.3.12.2.1107.5.9.1'], RejectSopClasses: ['1.3.12.2.1107.*'] })).toEqual([
      '1.3.12.2.1107.5.9.1',
    ]);
  });

  it('ignore an empty or malformed list, as Orthanc', () => {
    expect(accepted({ AcceptedSopClasses: [] })).toEqual(DCMTK);
    expect(accepted({ AcceptedSopClasses: 'all' })).toEqual(DCMTK);
  });
});

describe('Orthanc versions', () => {
  it('compare numerically, and "mainline" is newer than any release', () => {
    expect(isAtLeast('1.12.8', [1, 12, 8])).toBe(true);
    expect(isAtLeast('1.12.10', [1, 12, 8])).toBe(true);
    expect(isAtLeast('1.12.7', [1, 12, 8])).toBe(false);
    expect(isAtLeast('1.9.9', [1, 12, 8])).toBe(false);
    expect(isAtLeast('mainline', [1, 12, 8])).toBe(true);
  });
});
