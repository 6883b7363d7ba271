import { describe, expect, it } from 'vitest';
import { acceptedSopClasses } from '../../src/acceptance.js';

const DCMTK = ['1.2.840.10008.5.1.4.1.1.2', '1.2.840.10008.5.1.4.1.1.4', '1.2.840.10008.5.1.4.1.1.7', '1.2.840.10008.5.1.4.1.1.128'];

describe('accepted storage SOP classes', () => {
  it('are every class DCMTK knows by default', () => {
    expect(acceptedSopClasses({}, DCMTK)).toEqual(DCMTK);
  });

  it('are the listed ones; a plain UID is taken even if DCMTK does not know it', () => {
    expect(acceptedSopClasses({ AcceptedSopClasses: ['1.2.840.10008.5.1.4.1.1.2', '1.3.12.2.1107.5.9.1'] }, DCMTK)).toEqual([
      '1.2.840.10008.5.1.4.1.1.2',
      '1.3.12.2.1107.5.9.1',
    ]);
  });

  it('expand wildcards among the classes DCMTK knows', () => {
    expect(acceptedSopClasses({ AcceptedSopClasses: ['1.2.840.10008.5.1.4.1.1.?'] }, DCMTK)).toEqual([
      '1.2.840.10008.5.1.4.1.1.2',
      '1.2.840.10008.5.1.4.1.1.4',
      '1.2.840.10008.5.1.4.1.1.7',
    ]);
  });

  it('leave out the rejected ones, by UID or by wildcard', () => {
    expect(acceptedSopClasses({ RejectedSopClasses: ['1.2.840.10008.5.1.4.1.1.4'] }, DCMTK)).toEqual([
      '1.2.840.10008.5.1.4.1.1.2',
      '1.2.840.10008.5.1.4.1.1.7',
      '1.2.840.10008.5.1.4.1.1.128',
    ]);
    expect(acceptedSopClasses({ RejectedSopClasses: ['*.1.1.1??'] }, DCMTK)).toEqual(DCMTK.slice(0, 3));
  });

  it('ignore an empty or malformed list, as Orthanc', () => {
    expect(acceptedSopClasses({ AcceptedSopClasses: [] }, DCMTK)).toEqual(DCMTK);
    expect(acceptedSopClasses({ AcceptedSopClasses: 'all' }, DCMTK)).toEqual(DCMTK);
  });
});
