import { describe, expect, it } from 'vitest';
import { readDicomOptions, type TenantConfig } from '../../src/configuration.js';
import { answerOf, findBody, needsExactRecheck, recheckedConstraints } from '../../src/find.js';
import { FindRequestError, parseQuery, type QueryElement } from '../../src/query.js';

const tenant: TenantConfig = {
  index: 0,
  aet: 'TENANT_A',
  port: 4243,
  labels: ['a'],
  labelsConstraint: 'All',
  labelsStoreLevels: ['Study', 'Series', 'Instance'],
  foreignInstances: 'Reject',
};

function element(tag: string, vr: string, value: string | null): QueryElement {
  return { tag, vr, value };
}

const level = (value: string) => element('0008,0052', 'CS', value);

describe('parsing a C-FIND identifier', () => {
  it('needs a QueryRetrieveLevel, with a value Orthanc knows', () => {
    expect(() => parseQuery([element('0010,0010', 'PN', 'DOE')])).toThrow(
      new FindRequestError('C-FIND request without the tag 0008,0052 (QueryRetrieveLevel)'),
    );
    expect(() => parseQuery([level('')])).toThrow(FindRequestError);
    expect(() => parseQuery([level('FRAME')])).toThrow('C-FIND request with an invalid QueryRetrieveLevel: "FRAME"');
  });

  it('accepts IMAGE and INSTANCE for the instance level', () => {
    expect(parseQuery([level('IMAGE')]).level).toBe('Instance');
    expect(parseQuery([level('INSTANCE')]).level).toBe('Instance');
    expect(parseQuery([level('STUDY ')]).level).toBe('Study');
  });

  it('never matches on the level, SpecificCharacterSet, TimezoneOffsetFromUTC, group lengths or empty values', () => {
    const query = parseQuery([
      level('STUDY'),
      element('0008,0005', 'CS', 'ISO_IR 100'),
      element('0008,0201', 'SH', '+0100'),
      element('0010,0000', 'UL', '12'),
      element('0010,0010', 'PN', ''),
      element('0010,0020', 'LO', null),
      element('0020,000d', 'UI', '1.2.3'),
    ]);
    expect(query.constraints).toEqual([element('0020,000d', 'UI', '1.2.3')]);
  });

  it('returns every key but the level and SpecificCharacterSet', () => {
    const query = parseQuery([level('STUDY'), element('0008,0005', 'CS', 'ISO_IR 192'), element('0010,0010', 'PN', null)]);
    expect(query.returnedTags).toEqual(['0010,0010']);
  });
});

describe('the /tools/find request', () => {
  const options = readDicomOptions({});

  it('restricts to the tenant labels, asks for every returned key, case-sensitively without PN letters', () => {
    const query = parseQuery([level('STUDY'), element('0010,0020', 'LO', 'abc*'), element('0008,0061', 'CS', null)]);
    expect(findBody(query, tenant, options)).toEqual({
      Level: 'Study',
      Query: { '0010,0020': 'abc*' },
      Labels: ['a'],
      LabelsConstraint: 'All',
      Expand: true,
      Short: true,
      CaseSensitive: true,
      // The returned keys, then what entitlement needs: the PatientID and the study's UID.
      RequestedTags: ['0010,0020', '0008,0061', '0020,000d'],
    });
  });

  it('asks no case sensitivity when no constraint has letters, so that Orthanc can page the answer', () => {
    const query = parseQuery([level('STUDY'), element('0020,000d', 'UI', '1.2.3\\1.2.4'), element('0008,0020', 'DA', '2020-')]);
    expect(findBody(query, tenant, readDicomOptions({})).CaseSensitive).toBe(false);
  });

  it('is case-insensitive when a PN constraint has letters, and the other constraints are re-checked', () => {
    const query = parseQuery([level('STUDY'), element('0010,0010', 'PN', 'doe*'), element('0010,0020', 'LO', 'abc'), element('0008,0020', 'DA', '2020-')]);
    expect(needsExactRecheck(query, false)).toBe(true);
    expect(findBody(query, tenant, options).CaseSensitive).toBe(false);
    expect(recheckedConstraints(query)).toEqual([element('0010,0020', 'LO', 'abc')]);
    expect(needsExactRecheck(query, true)).toBe(false);
  });

});

describe('an answer', () => {
  it('has the tenant as RetrieveAETitle, echoes the level, and an empty value for what is missing', () => {
    const query = parseQuery([level('SERIES'), element('0020,000d', 'UI', null), element('0008,0060', 'CS', null)]);
    expect(answerOf({ RequestedTags: { '0020,000d': '1.2.3' } }, query, 'TENANT_A')).toEqual({
      '0008,0054': 'TENANT_A',
      '0008,0052': 'SERIES',
      '0020,000d': '1.2.3',
      '0008,0060': '',
    });
  });
});
