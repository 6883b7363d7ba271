import { describe, expect, it } from 'vitest';
import schema from '../../schemas/multitenant-dicom.schema.json' with { type: 'json' };
import {
  ConfigurationError,
  isSameAet,
  parseConfiguration,
  readDicomOptions,
  type DicomOptions,
} from '../../src/configuration.js';

type Json = Record<string, unknown>;

function server(fields: Json = {}): Json {
  return { AET: 'TENANT_A', Port: 4243, Labels: ['hospital-a'], ...fields };
}

function serverWithout(key: string, fields: Json = {}): Json {
  const result = server(fields);
  delete result[key];
  return result;
}

function parseServers(servers: unknown[], globals: Json = {}) {
  return parseConfiguration({ ...globals, MultitenantDicom: { Servers: servers } });
}

function errorOf(parse: () => unknown): string {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    const message = (error as ConfigurationError).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('expected a ConfigurationError');
}

function serverError(serverFields: unknown, globals: Json = {}): string {
  return errorOf(() => parseServers([serverFields], globals));
}

const AET_EXPECTED = 'a DICOM AE title of 1 to 16 characters (printable ASCII, no backslash, not only spaces)';
const LABELS_EXPECTED = 'a non-empty array of distinct labels of 1 to 64 characters [A-Za-z0-9_-]';
const LABEL_EXPECTED = 'a label of 1 to 64 characters [A-Za-z0-9_-]';
const LEVELS_EXPECTED =
  'an array of distinct resource levels (Patient, Study, Series, Instance; synonyms count as the same level)';
const LEVEL_EXPECTED =
  'a resource level: Patient, Study, Series or Instance (case-insensitive; Patients, Studies, Instances, Image and Images also accepted)';

const DEFAULT_DICOM_OPTIONS: DicomOptions = {
  dicomPort: 4242,
  httpPort: 8042,
  strictAetComparison: false,
  checkModalityHost: false,
  checkCalledAet: false,
  scpTimeoutSeconds: 30,
  threadsCount: 4,
  maximumPduLength: 16384,
  synchronousCMove: true,
  alwaysAllowEcho: true,
  alwaysAllowFind: false,
  alwaysAllowFindWorklist: false,
  alwaysAllowGet: false,
  alwaysAllowMove: false,
  alwaysAllowStore: true,
  caseSensitivePN: false,
  limitFindResults: 0,
  limitFindInstances: 0,
  transcodeDicomProtocol: true,
  scuTimeoutSeconds: 10,
  overwriteInstances: false,
  tls: { enabled: false, certificate: '', privateKey: '', trustedCertificates: '', remoteCertificateRequired: true, minimumVersion: 0, ciphers: [] },
};

describe('the section and its "Servers"', () => {
  it('without a section, says so and starts no server', () => {
    expect(parseConfiguration({ DicomAet: 'MAIN' })).toEqual({
      servers: [],
      dicom: DEFAULT_DICOM_OPTIONS,
      metricsEnabled: true,
      warnings: [],
      sectionPresent: false,
    });
  });

  it('treats a configuration that is not an object as an empty one', () => {
    expect(parseConfiguration(undefined)).toMatchObject({ servers: [], sectionPresent: false });
  });

  it.each([[{}], [{ Servers: [] }]])('accepts %j with no server', (section) => {
    expect(parseConfiguration({ MultitenantDicom: section })).toEqual({
      servers: [],
      dicom: DEFAULT_DICOM_OPTIONS,
      metricsEnabled: true,
      warnings: [],
      sectionPresent: true,
    });
  });

  it.each([
    [42, 'MultitenantDicom must be an object, got 42'],
    [null, 'MultitenantDicom must be an object, got null'],
    [[server()], 'MultitenantDicom must be an object, got [{"AET":"TENANT_A","Port":4243,"Labels":["hospital-a"]}]'],
  ])('rejects the section %j', (section, message) => {
    expect(errorOf(() => parseConfiguration({ MultitenantDicom: section }))).toBe(message);
  });

  it('rejects "Servers" that is not an array', () => {
    expect(errorOf(() => parseConfiguration({ MultitenantDicom: { Servers: { AET: 'A' } } }))).toBe(
      'MultitenantDicom: "Servers" must be an array of server objects, got {"AET":"A"}',
    );
  });

  it('rejects a server that is not an object', () => {
    expect(serverError('TENANT_A')).toBe(
      'MultitenantDicom.Servers[0] must be an object with "AET", "Port" and "Labels", got "TENANT_A"',
    );
  });

  it('reads a full server', () => {
    const configuration = parseServers([
      { AET: 'TENANT_A', Port: 4243, Labels: ['hospital-a'], LabelsConstraint: 'All', LabelsStoreLevels: ['Study', 'Series', 'Instance'] },
      {
        AET: 'TENANT_B',
        Port: 4244,
        Labels: ['b-1', 'B_2'],
        LabelsConstraint: 'None',
        LabelsStoreLevels: ['Patient'],
        ForeignInstances: 'Share',
        AllowedCallers: ['ws1', 'ws2'],
        AllowedMoveDestinations: ['pacs'],
      },
    ]);
    expect(configuration).toEqual({
      servers: [
        {
          index: 0,
          aet: 'TENANT_A',
          port: 4243,
          labels: ['hospital-a'],
          labelsConstraint: 'All',
          labelsStoreLevels: ['Study', 'Series', 'Instance'],
          foreignInstances: 'Reject',
        },
        {
          index: 1,
          aet: 'TENANT_B',
          port: 4244,
          labels: ['b-1', 'B_2'],
          labelsConstraint: 'None',
          labelsStoreLevels: ['Patient'],
          foreignInstances: 'Share',
          allowedCallers: ['ws1', 'ws2'],
          allowedMoveDestinations: ['pacs'],
        },
      ],
      dicom: DEFAULT_DICOM_OPTIONS,
      metricsEnabled: true,
      warnings: [],
      sectionPresent: true,
    });
  });

  it('applies the defaults of "LabelsConstraint" and "LabelsStoreLevels" without touching Orthanc\'s configuration', () => {
    const orthancConfiguration = { MultitenantDicom: { Servers: [server()] } };
    const [tenant] = parseConfiguration(orthancConfiguration).servers;
    expect(tenant?.labelsConstraint).toBe('All');
    expect(tenant?.labelsStoreLevels).toEqual(['Study', 'Series', 'Instance']);
    expect(tenant?.foreignInstances).toBe('Reject');
    expect(tenant?.allowedCallers).toBeUndefined();
    expect(orthancConfiguration).toEqual({ MultitenantDicom: { Servers: [server()] } });
  });
});

describe('"ForeignInstances", "AllowedCallers" and "AllowedMoveDestinations"', () => {
  it('accept only "Reject" or "Share"', () => {
    expect(serverError(server({ ForeignInstances: 'share' }))).toBe(
      'MultitenantDicom.Servers[0] (AET "TENANT_A"): "ForeignInstances" must be "Reject" or "Share" (case-sensitive), got "share"',
    );
  });

  it('take distinct modality names', () => {
    expect(serverError(server({ AllowedCallers: 'ws1' }))).toBe(
      'MultitenantDicom.Servers[0] (AET "TENANT_A"): "AllowedCallers" must be an array of distinct modality names (keys of DicomModalities), got "ws1"',
    );
    expect(serverError(server({ AllowedMoveDestinations: ['pacs', ''] }))).toBe(
      'MultitenantDicom.Servers[0] (AET "TENANT_A"): "AllowedMoveDestinations"[1] must be a modality name (a key of DicomModalities), got ""',
    );
  });
});

describe('"AET"', () => {
  it('is required', () => {
    expect(serverError(serverWithout('AET'))).toBe(`MultitenantDicom.Servers[0]: "AET" is required (${AET_EXPECTED})`);
  });

  it.each([
    ['THIS_IS_A_VERY_LONG_AET', '"THIS_IS_A_VERY_LONG_AET"'],
    ['', '""'],
    ['    ', '"    "'],
    ['A\\B', '"A\\\\B"'],
    ['A\tB', '"A\\tB"'],
    ['HÔPITAL', '"HÔPITAL"'],
    [42, '42'],
  ])('rejects %j', (aet, rendered) => {
    expect(serverError(server({ AET: aet }))).toBe(`MultitenantDicom.Servers[0]: "AET" must be ${AET_EXPECTED}, got ${rendered}`);
  });

  it.each(['A', 'SIXTEEN_CHARS_16', ' LEADING SPACE', 'x!"#$%&\'()*+,-./', ':;<=>?@[]^_`{|}~'])('accepts %j', (aet) => {
    expect(parseServers([server({ AET: aet })]).servers[0]?.aet).toBe(aet);
  });

  it('is reported before the other keys of its server', () => {
    expect(serverError(server({ AET: '', Port: 0, Labels: [] }))).toBe(
      `MultitenantDicom.Servers[0]: "AET" must be ${AET_EXPECTED}, got ""`,
    );
  });
});

describe('"Port"', () => {
  it('names the server by index and AET (the example of the specification)', () => {
    expect(errorOf(() => parseServers([server(), { AET: 'HELLO', Port: '4343x', Labels: ['x'] }]))).toBe(
      'MultitenantDicom.Servers[1] (AET "HELLO"): "Port" must be an integer from 1 to 65535, got "4343x"',
    );
  });

  it('is required', () => {
    expect(serverError(serverWithout('Port'))).toBe(
      'MultitenantDicom.Servers[0] (AET "TENANT_A"): "Port" is required (an integer from 1 to 65535)',
    );
  });

  it.each([[0], [65536], [-4243], [4243.5], [null]])('rejects %j', (port) => {
    expect(serverError(server({ Port: port }))).toBe(
      `MultitenantDicom.Servers[0] (AET "TENANT_A"): "Port" must be an integer from 1 to 65535, got ${JSON.stringify(port)}`,
    );
  });

  it.each([1, 65535])('accepts %j', (port) => {
    expect(parseServers([server({ Port: port })]).servers[0]?.port).toBe(port);
  });

  it('must differ from Orthanc\'s DicomPort, 4242 by default', () => {
    expect(serverError(server({ Port: 4242 }))).toBe(
      'MultitenantDicom.Servers[0] (AET "TENANT_A"): "Port" 4242 is Orthanc\'s own DicomPort',
    );
    expect(serverError(server({ Port: 11112 }), { DicomPort: 11112 })).toBe(
      'MultitenantDicom.Servers[0] (AET "TENANT_A"): "Port" 11112 is Orthanc\'s own DicomPort',
    );
    expect(parseServers([server({ Port: 4242 })], { DicomPort: 11112 }).servers[0]?.port).toBe(4242);
  });

  it('must differ from Orthanc\'s HttpPort, 8042 by default', () => {
    expect(serverError(server({ Port: 8042 }))).toBe(
      'MultitenantDicom.Servers[0] (AET "TENANT_A"): "Port" 8042 is Orthanc\'s own HttpPort',
    );
    expect(serverError(server({ Port: 8080 }), { HttpPort: 8080 })).toBe(
      'MultitenantDicom.Servers[0] (AET "TENANT_A"): "Port" 8080 is Orthanc\'s own HttpPort',
    );
  });

  it('is unique across servers', () => {
    expect(errorOf(() => parseServers([server({ AET: 'A' }), server({ AET: 'B', Port: 4244 }), server({ AET: 'C' })]))).toBe(
      'MultitenantDicom.Servers[2] (AET "C"): "Port" 4243 is already used by Servers[0] (AET "A")',
    );
  });
});

describe('"Labels"', () => {
  const prefix = 'MultitenantDicom.Servers[0] (AET "TENANT_A"): "Labels"';

  it('is required', () => {
    expect(serverError(serverWithout('Labels'))).toBe(`${prefix} is required (${LABELS_EXPECTED})`);
  });

  it.each([
    [[], '[]'],
    ['hospital-a', '"hospital-a"'],
    [['a', 'b', 'a'], '["a","b","a"]'],
  ])('rejects %j', (labels, rendered) => {
    expect(serverError(server({ Labels: labels }))).toBe(`${prefix} must be ${LABELS_EXPECTED}, got ${rendered}`);
  });

  it.each([
    ['a b', '"a b"'],
    ['', '""'],
    ['x'.repeat(65), `"${'x'.repeat(65)}"`],
    ['é', '"é"'],
    [42, '42'],
  ])('names the bad label %j by its index', (label, rendered) => {
    expect(serverError(server({ Labels: ['ok', label] }))).toBe(`${prefix}[1] must be ${LABEL_EXPECTED}, got ${rendered}`);
  });

  it('refuses the label the plugin sets itself on patients of several senders', () => {
    expect(serverError(server({ Labels: ['a', 'multitenant-mixed'] }))).toBe(
      `${prefix}[1] must be a label other than "multitenant-mixed", which the plugin sets itself, got "multitenant-mixed"`,
    );
  });

  it('reports a bad label before a duplicate', () => {
    expect(serverError(server({ Labels: ['a b', 'a b'] }))).toBe(`${prefix}[0] must be ${LABEL_EXPECTED}, got "a b"`);
  });

  it('accepts labels of 64 characters of [A-Za-z0-9_-], keeping their order', () => {
    const labels = ['z', 'x'.repeat(64), 'Az09_-'];
    expect(parseServers([server({ Labels: labels })]).servers[0]?.labels).toEqual(labels);
  });
});

describe('"LabelsConstraint"', () => {
  it.each(['All', 'Any', 'None'] as const)('accepts %j', (constraint) => {
    expect(parseServers([server({ LabelsConstraint: constraint })]).servers[0]?.labelsConstraint).toBe(constraint);
  });

  it.each([
    ['all', '"all"'],
    ['ANY', '"ANY"'],
    [true, 'true'],
  ])('rejects %j (case-sensitive, like the stock plugin)', (constraint, rendered) => {
    expect(serverError(server({ LabelsConstraint: constraint }))).toBe(
      `MultitenantDicom.Servers[0] (AET "TENANT_A"): "LabelsConstraint" must be "All", "Any" or "None" (case-sensitive), got ${rendered}`,
    );
  });
});

describe('"LabelsStoreLevels"', () => {
  const prefix = 'MultitenantDicom.Servers[0] (AET "TENANT_A"): "LabelsStoreLevels"';
  const levelsOf = (levels: unknown) => parseServers([server({ LabelsStoreLevels: levels })]).servers[0]?.labelsStoreLevels;

  it.each([
    ['Patient', 'Patient'],
    ['Patients', 'Patient'],
    ['Study', 'Study'],
    ['Studies', 'Study'],
    ['Series', 'Series'],
    ['Instance', 'Instance'],
    ['Instances', 'Instance'],
    ['Image', 'Instance'],
    ['Images', 'Instance'],
    ['PATIENT', 'Patient'],
    ['sTuDiEs', 'Study'],
    ['series', 'Series'],
    ['iMaGeS', 'Instance'],
  ])('accepts %j as Orthanc\'s StringToResourceType does, as %j', (spelling, level) => {
    expect(levelsOf([spelling])).toEqual([level]);
  });

  it('lists the levels in the canonical order', () => {
    expect(levelsOf(['instances', 'PATIENT', 'series'])).toEqual(['Patient', 'Series', 'Instance']);
  });

  it('accepts an empty array: no label on store', () => {
    expect(levelsOf([])).toEqual([]);
  });

  it.each([
    ['Studys', '"Studys"'],
    ['Seriess', '"Seriess"'],
    ['ſtudy', '"ſtudy"'],
    ['patıent', '"patıent"'],
    [' Study', '" Study"'],
    [3, '3'],
  ])('names the bad level %j by its index', (level, rendered) => {
    expect(serverError(server({ LabelsStoreLevels: ['Study', level] }))).toBe(
      `${prefix}[1] must be ${LEVEL_EXPECTED}, got ${rendered}`,
    );
  });

  it.each([
    ['Study', '"Study"'],
    [['Study', 'Study'], '["Study","Study"]'],
    [['Study', 'studies'], '["Study","studies"]'],
    [['Instance', 'Image'], '["Instance","Image"]'],
  ])('rejects %j', (levels, rendered) => {
    expect(serverError(server({ LabelsStoreLevels: levels }))).toBe(`${prefix} must be ${LEVELS_EXPECTED}, got ${rendered}`);
  });
});

describe('unique AETs', () => {
  it('ignores case when StrictAetComparison is false (the default)', () => {
    const servers = [server({ AET: 'b', Port: 4243 }), server({ AET: 'A', Port: 4244 }), server({ AET: 'B', Port: 4245 })];
    const message =
      'MultitenantDicom.Servers[2] (AET "B"): "AET" duplicates the AET of Servers[0] ("b"); AETs must be unique (StrictAetComparison is false, so case is ignored)';
    expect(errorOf(() => parseServers(servers))).toBe(message);
    expect(errorOf(() => parseServers(servers, { StrictAetComparison: false }))).toBe(message);
  });

  it('respects case when StrictAetComparison is true', () => {
    const servers = [server({ AET: 'b', Port: 4243 }), server({ AET: 'B', Port: 4244 })];
    expect(parseServers(servers, { StrictAetComparison: true }).servers.map((tenant) => tenant.aet)).toEqual(['b', 'B']);
    expect(errorOf(() => parseServers([...servers, server({ AET: 'B', Port: 4245 })], { StrictAetComparison: true }))).toBe(
      'MultitenantDicom.Servers[2] (AET "B"): "AET" duplicates the AET of Servers[1] ("B"); AETs must be unique (StrictAetComparison is true, so case matters)',
    );
  });
});

describe('the first problem', () => {
  it('is the one of the first server that has one', () => {
    const servers = [server({ AET: 'A' }), server({ AET: 'a', Port: 4244 }), server({ AET: 'C', Port: 'x' })];
    expect(errorOf(() => parseServers(servers))).toBe(
      'MultitenantDicom.Servers[1] (AET "a"): "AET" duplicates the AET of Servers[0] ("A"); AETs must be unique (StrictAetComparison is false, so case is ignored)',
    );
  });

  it('follows the order of the keys within a server', () => {
    expect(serverError({ Labels: 'x', LabelsConstraint: 'x', AET: 'A' })).toBe(
      'MultitenantDicom.Servers[0] (AET "A"): "Port" is required (an integer from 1 to 65535)',
    );
    expect(serverError(server({ LabelsStoreLevels: 'x', LabelsConstraint: 'x', Labels: 'x' }))).toBe(
      `MultitenantDicom.Servers[0] (AET "TENANT_A"): "Labels" must be ${LABELS_EXPECTED}, got "x"`,
    );
  });
});

describe('unknown keys', () => {
  it('are ignored with a warning naming them, section first', () => {
    const configuration = parseConfiguration({
      MultitenantDicom: { Foo: 1, Servers: [server({ AET: 'A', Lables: ['x'] }), server({ AET: 'B', Port: 4244, labels: 1, Bar: 2 })] },
    });
    expect(configuration.warnings).toEqual([
      'MultitenantDicom: unknown key "Foo" is ignored',
      'MultitenantDicom.Servers[0] (AET "A"): unknown key "Lables" is ignored',
      'MultitenantDicom.Servers[1] (AET "B"): unknown key "labels" is ignored',
      'MultitenantDicom.Servers[1] (AET "B"): unknown key "Bar" is ignored',
    ]);
    expect(configuration.servers).toHaveLength(2);
  });

  it('do not hide a missing required key', () => {
    expect(serverError(serverWithout('Labels', { Lables: ['x'] }))).toBe(
      `MultitenantDicom.Servers[0] (AET "TENANT_A"): "Labels" is required (${LABELS_EXPECTED})`,
    );
  });
});

describe('readDicomOptions', () => {
  it('has the defaults of the Orthanc core', () => {
    expect(readDicomOptions({})).toEqual(DEFAULT_DICOM_OPTIONS);
  });

  it('reads every option', () => {
    expect(
      readDicomOptions({
        DicomAet: 'MAIN',
        DicomPort: 11112,
        HttpPort: 8080,
        StrictAetComparison: true,
        DicomCheckModalityHost: true,
        DicomCheckCalledAet: true,
        DicomScpTimeout: 0,
        DicomThreadsCount: 1,
        MaximumPduLength: 65536,
        SynchronousCMove: false,
        UnknownSopClassAccepted: true,
        DicomAlwaysAllowEcho: false,
        DicomAlwaysAllowFind: true,
        DicomAlwaysAllowFindWorklist: true,
        DicomAlwaysAllowGet: true,
        DicomAlwaysAllowMove: true,
        DicomAlwaysAllowStore: false,
        CaseSensitivePN: true,
        LimitFindResults: 100,
        LimitFindInstances: 1000,
        TranscodeDicomProtocol: false,
        DicomScuTimeout: 3,
        OverwriteInstances: true,
      }),
    ).toEqual({
      dicomPort: 11112,
      httpPort: 8080,
      strictAetComparison: true,
      checkModalityHost: true,
      checkCalledAet: true,
      scpTimeoutSeconds: 0,
      threadsCount: 1,
      maximumPduLength: 65536,
      synchronousCMove: false,
      alwaysAllowEcho: false,
      alwaysAllowFind: true,
      alwaysAllowFindWorklist: true,
      alwaysAllowGet: true,
      alwaysAllowMove: true,
      alwaysAllowStore: false,
      caseSensitivePN: true,
      limitFindResults: 100,
      limitFindInstances: 1000,
      transcodeDicomProtocol: false,
      scuTimeoutSeconds: 3,
      overwriteInstances: true,
      tls: { enabled: false, certificate: '', privateKey: '', trustedCertificates: '', remoteCertificateRequired: true, minimumVersion: 0, ciphers: [] },
    });
  });

  it('falls back to the default for a value of the wrong type', () => {
    expect(
      readDicomOptions({
        DicomAet: 42,
        DicomPort: '11112',
        HttpPort: -1,
        DicomThreadsCount: 2.5,
        StrictAetComparison: 'true',
        SynchronousCMove: null,
      }),
    ).toEqual(DEFAULT_DICOM_OPTIONS);
  });

  it('is what parseConfiguration returns', () => {
    expect(parseConfiguration({ DicomThreadsCount: 8, MultitenantDicom: {} }).dicom.threadsCount).toBe(8);
  });
});

describe('isSameAet', () => {
  it('compares exactly when strict', () => {
    expect(isSameAet(true, 'ORTHANC', 'ORTHANC')).toBe(true);
    expect(isSameAet(true, 'ORTHANC', 'orthanc')).toBe(false);
  });

  it('ignores ASCII case only when not strict', () => {
    expect(isSameAet(false, 'ORTHANC', 'orthanc')).toBe(true);
    expect(isSameAet(false, 'ORTHANC', 'ORTHANC2')).toBe(false);
    expect(isSameAet(false, 'É', 'é')).toBe(false);
  });
});

describe('the schema', () => {
  // Every value the schema can refuse needs the wording of its error message.
  const VALIDATION_KEYWORDS = ['type', 'enum', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'minItems', 'uniqueItems'];

  function nodesWithoutExpectation(node: unknown, path: string): string[] {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) {
      return [];
    }
    const object = node as Json;
    const own = VALIDATION_KEYWORDS.some((keyword) => keyword in object) && !('x-expected' in object) ? [path] : [];
    const children = ['properties', 'definitions'].flatMap((group) =>
      Object.entries((object[group] as Json | undefined) ?? {}).map(([name, child]) => nodesWithoutExpectation(child, `${path}/${group}/${name}`)),
    );
    return [...own, ...children.flat(), ...nodesWithoutExpectation(object.items, `${path}/items`)];
  }

  it('gives every validated value an "x-expected" wording', () => {
    expect(nodesWithoutExpectation(schema, '#')).toEqual([]);
  });
});

describe('"AuditLog"', () => {
  const section = (auditLog: unknown) => ({ MultitenantDicom: { Servers: [server()], AuditLog: auditLog } });

  it('is absent by default: no audit trail', () => {
    expect(parseServers([server()]).auditLog).toBeUndefined();
  });

  it('names the file of the audit trail', () => {
    expect(parseConfiguration(section({ Path: '/var/log/orthanc/multitenant-audit.jsonl' })).auditLog).toEqual({
      path: '/var/log/orthanc/multitenant-audit.jsonl',
    });
  });

  it.each([
    [42, 'MultitenantDicom: "AuditLog" must be an object with "Path", got 42'],
    [null, 'MultitenantDicom: "AuditLog" must be an object with "Path", got null'],
    [['/x'], 'MultitenantDicom: "AuditLog" must be an object with "Path", got ["/x"]'],
    [{}, 'MultitenantDicom.AuditLog: "Path" is required (a file path (a non-empty string))'],
    [{ Path: '' }, 'MultitenantDicom.AuditLog: "Path" must be a file path (a non-empty string), got ""'],
    [{ Path: 5 }, 'MultitenantDicom.AuditLog: "Path" must be a file path (a non-empty string), got 5'],
    [{ Path: 'a\u0000b' }, 'MultitenantDicom.AuditLog: "Path" must be a file path (a non-empty string), got "a\\u0000b"'],
  ])('rejects %j in one line naming the key and the expectation', (auditLog, message) => {
    expect(errorOf(() => parseConfiguration(section(auditLog)))).toBe(message);
  });

  it('warns about an unknown key of its own', () => {
    expect(parseConfiguration(section({ Path: '/a.jsonl', Pth: 'x' })).warnings).toEqual([
      'MultitenantDicom.AuditLog: unknown key "Pth" is ignored',
    ]);
  });

  it('is a key of the section, not of a server', () => {
    expect(parseServers([server({ AuditLog: { Path: '/a.jsonl' } })]).warnings).toEqual([
      'MultitenantDicom.Servers[0] (AET "TENANT_A"): unknown key "AuditLog" is ignored',
    ]);
  });

  it('is valid in the schema, with an "x-expected" for each of its values', () => {
    const auditLog = schema.properties.AuditLog;
    expect(auditLog['x-expected']).toBeTypeOf('string');
    expect(auditLog.properties.Path['x-expected']).toBeTypeOf('string');
  });
});

describe('"Metrics"', () => {
  const section = (metrics: unknown, orthanc: Record<string, unknown> = {}) => ({
    ...orthanc,
    MultitenantDicom: { Servers: [server()], Metrics: metrics },
  });

  it('is enabled by default, as Orthanc\'s own metrics are', () => {
    expect(parseServers([server()]).metricsEnabled).toBe(true);
    expect(parseConfiguration({}).metricsEnabled).toBe(true);
  });

  it('follows Orthanc\'s "MetricsEnabled" when it has no "Enabled" of its own', () => {
    expect(parseConfiguration({ MetricsEnabled: false, MultitenantDicom: { Servers: [server()] } }).metricsEnabled).toBe(false);
    expect(parseConfiguration(section({}, { MetricsEnabled: false })).metricsEnabled).toBe(false);
    expect(parseConfiguration({ MetricsEnabled: false }).metricsEnabled).toBe(false);
  });

  it('"Enabled" wins over Orthanc\'s "MetricsEnabled"', () => {
    expect(parseConfiguration(section({ Enabled: false })).metricsEnabled).toBe(false);
    expect(parseConfiguration(section({ Enabled: true }, { MetricsEnabled: false })).metricsEnabled).toBe(true);
  });

  it.each([
    [false, 'MultitenantDicom: "Metrics" must be an object with "Enabled", got false'],
    [{ Enabled: 'no' }, 'MultitenantDicom.Metrics: "Enabled" must be true or false, got "no"'],
    [{ Enabled: 0 }, 'MultitenantDicom.Metrics: "Enabled" must be true or false, got 0'],
  ])('rejects %j in one line naming the key and the expectation', (metrics, message) => {
    expect(errorOf(() => parseConfiguration(section(metrics)))).toBe(message);
  });

  it('warns about an unknown key of its own', () => {
    expect(parseConfiguration(section({ Enabled: true, Enable: false })).warnings).toEqual([
      'MultitenantDicom.Metrics: unknown key "Enable" is ignored',
    ]);
  });
});
