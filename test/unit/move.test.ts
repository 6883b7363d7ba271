// retrieveKeys (which resources a C-MOVE or C-GET identifier names, as Orthanc's
// OrthancMoveRequestHandler::LookupIdentifiers reads it) and firstModalityWithAet (the
// destination of a C-MOVE, as OrthancConfiguration::LookupDicomModalityUsingAETitle).
import { describe, expect, it } from 'vitest';
import { firstModalityWithAet, parseModalities } from '../../src/modalities.js';
import { retrieveKeys, RetrieveRequestError } from '../../src/move.js';
import type { QueryElement } from '../../src/query.js';

/** The first modality with this AET, as the plugin finds a C-MOVE destination. */
function modalityWithAet(modalities: Record<string, { AET: string; AllowTranscoding?: boolean }>, aet: string, strict: boolean) {
  const modality = firstModalityWithAet(parseModalities(withHosts(modalities)), aet, strict);
  return modality === undefined ? undefined : { name: modality.name, modality: stripHost(modality.serialized) };
}

function withHosts(modalities: Record<string, object>) {
  return Object.fromEntries(Object.entries(modalities).map(([name, modality]) => [name, { Host: '127.0.0.1', Port: 104, ...modality }]));
}

function stripHost(serialized: Record<string, unknown>) {
  const { Host: _host, Port: _port, ...rest } = serialized;
  return rest;
}

const TAG = {
  QueryRetrieveLevel: '0008,0052',
  AccessionNumber: '0008,0050',
  PatientID: '0010,0020',
  StudyInstanceUID: '0020,000d',
  SeriesInstanceUID: '0020,000e',
  SOPInstanceUID: '0008,0018',
  PatientName: '0010,0010',
} as const;
const VR: Record<string, string> = {
  [TAG.QueryRetrieveLevel]: 'CS',
  [TAG.AccessionNumber]: 'SH',
  [TAG.PatientID]: 'LO',
  [TAG.PatientName]: 'PN',
};

/** An identifier from tag names and values (null: the element is present without a value). */
function identifier(elements: Partial<Record<keyof typeof TAG, string | null>>): QueryElement[] {
  return Object.entries(elements).map(([name, value]) => {
    const tag = TAG[name as keyof typeof TAG];
    return { tag, vr: VR[tag] ?? 'UI', value: value ?? null };
  });
}

describe('retrieveKeys', () => {
  describe('with a QueryRetrieveLevel', () => {
    it.each([
      ['PATIENT', { PatientID: 'P1' }, 'Patient', TAG.PatientID, ['P1']],
      ['STUDY', { StudyInstanceUID: '1.2.3' }, 'Study', TAG.StudyInstanceUID, ['1.2.3']],
      ['SERIES', { SeriesInstanceUID: '1.2.3.4' }, 'Series', TAG.SeriesInstanceUID, ['1.2.3.4']],
      ['IMAGE', { SOPInstanceUID: '1.2.3.4.5' }, 'Instance', TAG.SOPInstanceUID, ['1.2.3.4.5']],
    ] as const)('%s: the unique key of the level', (level, keys, expectedLevel, tag, values) => {
      expect(retrieveKeys(identifier({ QueryRetrieveLevel: level, ...keys })), level).toEqual({ level: expectedLevel, tag, values });
    });

    it('reads the level as Orthanc\'s StringToResourceType (case-insensitive, synonyms, padding)', () => {
      const uid = { SOPInstanceUID: '1.2' };
      expect(retrieveKeys(identifier({ QueryRetrieveLevel: 'instance', ...uid })).level, '"instance"').toBe('Instance');
      expect(retrieveKeys(identifier({ QueryRetrieveLevel: 'Images', ...uid })).level, '"Images"').toBe('Instance');
      expect(retrieveKeys(identifier({ QueryRetrieveLevel: 'STUDY ', StudyInstanceUID: '1.2' })).level, '"STUDY " (padded)').toBe('Study');
    });

    it('ignores the keys of the other levels', () => {
      const keys = retrieveKeys(
        identifier({ QueryRetrieveLevel: 'SERIES', PatientID: 'P1', StudyInstanceUID: '1.2', SeriesInstanceUID: '1.2.3', SOPInstanceUID: '1.2.3.4' }),
      );
      expect(keys, 'SERIES with every unique key').toEqual({ level: 'Series', tag: TAG.SeriesInstanceUID, values: ['1.2.3'] });
    });

    it('at STUDY level, looks up a non-empty AccessionNumber first', () => {
      expect(
        retrieveKeys(identifier({ QueryRetrieveLevel: 'STUDY', AccessionNumber: 'A1', StudyInstanceUID: '1.2' })),
        'STUDY with AccessionNumber and StudyInstanceUID',
      ).toEqual({ level: 'Study', tag: TAG.AccessionNumber, values: ['A1'] });
      expect(
        retrieveKeys(identifier({ QueryRetrieveLevel: 'STUDY', AccessionNumber: 'A1' })),
        'STUDY with AccessionNumber only',
      ).toEqual({ level: 'Study', tag: TAG.AccessionNumber, values: ['A1'] });
    });

    it('at STUDY level, falls back to StudyInstanceUID when AccessionNumber is empty or has no value', () => {
      for (const accession of ['', null]) {
        expect(
          retrieveKeys(identifier({ QueryRetrieveLevel: 'STUDY', AccessionNumber: accession, StudyInstanceUID: '1.2' })),
          `STUDY with AccessionNumber ${JSON.stringify(accession)}`,
        ).toEqual({ level: 'Study', tag: TAG.StudyInstanceUID, values: ['1.2'] });
      }
    });

    it('does not use AccessionNumber at other levels', () => {
      expect(
        () => retrieveKeys(identifier({ QueryRetrieveLevel: 'SERIES', AccessionNumber: 'A1' })),
        'SERIES with only AccessionNumber',
      ).toThrow(RetrieveRequestError);
    });

    it('splits a list of values on backslashes and drops empty items (they match nothing in the core)', () => {
      expect(
        retrieveKeys(identifier({ QueryRetrieveLevel: 'STUDY', StudyInstanceUID: '1.2\\1.3\\\\1.4\\' })).values,
        'StudyInstanceUID "1.2\\1.3\\\\1.4\\"',
      ).toEqual(['1.2', '1.3', '1.4']);
    });

    it('takes values literally: a wildcard is no wildcard', () => {
      expect(retrieveKeys(identifier({ QueryRetrieveLevel: 'PATIENT', PatientID: 'P*' })).values, 'PatientID "P*"').toEqual(['P*']);
    });

    it('gives no values for an empty key (nothing is sent)', () => {
      expect(retrieveKeys(identifier({ QueryRetrieveLevel: 'SERIES', SeriesInstanceUID: '' })), 'SERIES, empty SeriesInstanceUID').toEqual({
        level: 'Series',
        tag: TAG.SeriesInstanceUID,
        values: [],
      });
    });

    it('refuses a level without its unique key, naming the key', () => {
      expect(() => retrieveKeys(identifier({ QueryRetrieveLevel: 'SERIES', StudyInstanceUID: '1.2' })), 'SERIES without SeriesInstanceUID').toThrow(
        /SERIES level request needs its unique key 0020,000e/,
      );
      expect(() => retrieveKeys(identifier({ QueryRetrieveLevel: 'PATIENT', PatientID: null })), 'PATIENT with PatientID without value').toThrow(
        RetrieveRequestError,
      );
    });

    it('refuses an invalid level, naming it', () => {
      expect(() => retrieveKeys(identifier({ QueryRetrieveLevel: 'WORKLIST', PatientID: 'P1' })), 'level "WORKLIST"').toThrow(
        /invalid QueryRetrieveLevel: "WORKLIST"/,
      );
    });
  });

  describe('without a QueryRetrieveLevel (as Tudor DICOM sends), the deepest level whose key is present', () => {
    it.each([
      ['every key', { PatientID: 'P1', StudyInstanceUID: '1.2', SeriesInstanceUID: '1.2.3', SOPInstanceUID: '1.2.3.4' }, 'Instance', TAG.SOPInstanceUID, '1.2.3.4'],
      ['no SOPInstanceUID', { PatientID: 'P1', StudyInstanceUID: '1.2', SeriesInstanceUID: '1.2.3' }, 'Series', TAG.SeriesInstanceUID, '1.2.3'],
      ['study and patient keys', { PatientID: 'P1', StudyInstanceUID: '1.2' }, 'Study', TAG.StudyInstanceUID, '1.2'],
      ['AccessionNumber and StudyInstanceUID', { AccessionNumber: 'A1', StudyInstanceUID: '1.2' }, 'Study', TAG.AccessionNumber, 'A1'],
      ['AccessionNumber only', { PatientID: 'P1', AccessionNumber: 'A1' }, 'Study', TAG.AccessionNumber, 'A1'],
      ['PatientID only', { PatientID: 'P1', PatientName: 'DOE' }, 'Patient', TAG.PatientID, 'P1'],
      ['SOPInstanceUID without value, SeriesInstanceUID', { SOPInstanceUID: null, SeriesInstanceUID: '1.2.3' }, 'Series', TAG.SeriesInstanceUID, '1.2.3'],
    ] as const)('%s', (name, keys, level, tag, value) => {
      expect(retrieveKeys(identifier(keys)), name).toEqual({ level, tag, values: [value] });
    });

    it('stops at a key that is present but empty, as the core (which then matches nothing)', () => {
      expect(retrieveKeys(identifier({ SOPInstanceUID: '', SeriesInstanceUID: '1.2.3' })), 'empty SOPInstanceUID, SeriesInstanceUID').toEqual({
        level: 'Instance',
        tag: TAG.SOPInstanceUID,
        values: [],
      });
    });

    it('treats a QueryRetrieveLevel without value as none, as the core', () => {
      expect(retrieveKeys(identifier({ QueryRetrieveLevel: null, SeriesInstanceUID: '1.2.3' })).level, 'QueryRetrieveLevel without value').toBe('Series');
    });

    it('refuses an identifier without any unique key', () => {
      expect(() => retrieveKeys(identifier({ PatientName: 'DOE' })), 'only PatientName').toThrow(RetrieveRequestError);
      expect(() => retrieveKeys([]), 'empty identifier').toThrow(/no QueryRetrieveLevel and no unique key/);
    });
  });
});

describe('modalityWithAet', () => {
  const modalities = {
    zeta: { AET: 'PACS' },
    alpha: { AET: 'pacs', AllowTranscoding: false },
    beta: { AET: 'STORE' },
  };

  it('finds the modality with this AET', () => {
    expect(modalityWithAet(modalities, 'STORE', false), 'STORE').toEqual({ name: 'beta', modality: { AET: 'STORE' } });
  });

  it('is undefined for an unknown AET', () => {
    expect(modalityWithAet(modalities, 'NOBODY', false), 'NOBODY').toBeUndefined();
    expect(modalityWithAet({}, 'PACS', false), 'no modalities').toBeUndefined();
  });

  it('compares AETs case-insensitively unless StrictAetComparison, folding ASCII only', () => {
    expect(modalityWithAet(modalities, 'store', false)?.name, '"store", not strict').toBe('beta');
    expect(modalityWithAet(modalities, 'store', true), '"store", strict').toBeUndefined();
    expect(modalityWithAet({ m: { AET: 'ÉCHO' } }, 'éCHO', false), '"éCHO" vs "ÉCHO"').toBeUndefined();
  });

  it('takes the first by symbolic name when several modalities share the AET (not the first in the object)', () => {
    expect(modalityWithAet(modalities, 'PACS', false), 'PACS, not strict: alpha before zeta').toEqual({
      name: 'alpha',
      modality: { AET: 'pacs', AllowTranscoding: false },
    });
    expect(modalityWithAet(modalities, 'PACS', true)?.name, 'PACS, strict: only zeta').toBe('zeta');
    expect(modalityWithAet(modalities, 'pacs', true)?.name, 'pacs, strict: only alpha').toBe('alpha');
  });

  it('orders symbolic names as Orthanc\'s std::map: bytewise, upper case before lower case, digits as text', () => {
    const named = { b: { AET: 'X' }, B: { AET: 'X' }, '10': { AET: 'Y' }, '9': { AET: 'Y' } };
    expect(modalityWithAet(named, 'X', false)?.name, '"B" before "b"').toBe('B');
    expect(modalityWithAet(named, 'Y', false)?.name, '"10" before "9"').toBe('10');
  });

  it('orders every character Orthanc allows in symbolic names ([A-Za-z0-9_-]) bytewise, as std::map', () => {
    // Bytewise: '-' (2D) < '0' (30) < 'A' (41) < '_' (5F) < 'a' (61).
    const named = { ws_1: { AET: 'X' }, wsa: { AET: 'X' }, wsA: { AET: 'X' }, ws0: { AET: 'X' }, 'ws-1': { AET: 'X' } };
    const order: string[] = [];
    const remaining: Record<string, { AET: string }> = { ...named };
    for (let found = modalityWithAet(remaining, 'X', false); found !== undefined; found = modalityWithAet(remaining, 'X', false)) {
      order.push(found.name);
      delete remaining[found.name];
    }
    expect(order, 'the order in which modalities sharing an AET are chosen').toEqual(['ws-1', 'ws0', 'wsA', 'ws_1', 'wsa']);
  });
});
