// Side by side with Orthanc's stock C++ MultitenantDicom plugin: two Orthancs, one with
// our plugin and one with the stock plugin (both are named "multitenant-dicom", so only one
// can be loaded per Orthanc), the same tenants, the same data stored the same way. Each
// tenant's C-FIND answers are compared with those of the core restricted to the tenant:
// a reference Orthanc without plugin holding only the tenant's instances, restricted to
// the resources whose labels satisfy the tenant's constraint (test/support/find-data.ts;
// both plugins label the same resources, so the references serve both). Where the two
// plugins differ, a test names the difference and shows that ours answers as the core and
// the stock one does not.
//
// The stock plugin's DicomThreadsCount default is 1 and it has no C-GET (neither matters to
// C-FIND).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cfind,
  compareWithCore,
  EXTRA,
  jsonTag,
  labelIndex,
  MAIN_AET,
  startDeployment,
  startReference,
  storeScenario,
  TENANTS,
  valueOf,
  writeScenario,
  type Deployment,
  type FindOutcome,
  type FindQuery,
  type LabelIndex,
  type TenantSpec,
} from '../support/find-data.js';
import { stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { PLUGIN_PATH, STOCK_PLUGIN_PATH } from '../support/plugin.js';

const ROOT = '1.2.826.0.1.3680043.10.1234.31337';
const study = (p: number, s: number) => `${ROOT}.1.${p}.${s}`;
const TENANT_A = TENANTS.find((tenant) => tenant.key === 'A')!;

const q = (name: string, level: string | null, model: 'study' | 'patient', keys: string[], extra: Partial<FindQuery> = {}): FindQuery => ({
  name,
  level,
  model,
  keys,
  ...extra,
});

interface Side {
  deployment: Deployment;
  index: LabelIndex;
}

let work: string;
let ours: Side;
let stock: Side;
/** By tenant key: an Orthanc holding only the tenant's instances. */
let references: Record<string, RunningOrthanc>;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'stock-test-'));
  const data = await writeScenario(join(work, 'data'));
  const [oursDeployment, stockDeployment] = await Promise.all([startDeployment(PLUGIN_PATH), startDeployment(STOCK_PLUGIN_PATH)]);
  await Promise.all([storeScenario(oursDeployment, data), storeScenario(stockDeployment, data)]);
  ours = { deployment: oursDeployment, index: await labelIndex(oursDeployment.orthanc) };
  stock = { deployment: stockDeployment, index: await labelIndex(stockDeployment.orthanc) };
  const started = await Promise.all(TENANTS.map((tenant) => startReference(tenant, ours.index, data)));
  references = Object.fromEntries(TENANTS.map((tenant, i) => [tenant.key, started[i]!]));
});

afterAll(async () => {
  await stopAllOrthancs();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

function viaCore(side: Side, query: FindQuery): Promise<FindOutcome> {
  return cfind(work, { port: side.deployment.orthanc.dicomPort, calledAet: MAIN_AET }, query);
}

function viaTenant(side: Side, tenant: TenantSpec, query: FindQuery, dimseTimeoutSeconds?: number): Promise<FindOutcome> {
  return cfind(work, { port: side.deployment.ports[tenant.key]!, calledAet: tenant.aet, dimseTimeoutSeconds }, query);
}

function viaReference(tenant: TenantSpec, query: FindQuery): Promise<FindOutcome> {
  return cfind(work, { port: references[tenant.key]!.dicomPort, calledAet: MAIN_AET }, query);
}

/** The differences of each tenant of one side with the core restricted to it, as "AET: difference" lines. */
async function differences(side: Side, query: FindQuery, tenants: readonly TenantSpec[] = TENANTS) {
  const [core, expected, outcomes] = await Promise.all([
    viaCore(side, query),
    Promise.all(tenants.map((tenant) => viaReference(tenant, query))),
    Promise.all(tenants.map((tenant) => viaTenant(side, tenant, query))),
  ]);
  const lines = tenants.flatMap((tenant, i) =>
    compareWithCore(side.index, tenant, query, expected[i]!, outcomes[i]!).map((line) => `${tenant.aet}: ${line}`),
  );
  return { core, outcomes, lines };
}

/** Both sides at once; the core answers the same in both Orthancs. */
async function bothSides(query: FindQuery, tenants: readonly TenantSpec[] = TENANTS) {
  const [oursSide, stockSide] = await Promise.all([differences(ours, query, tenants), differences(stock, query, tenants)]);
  expect(stockSide.core.status, `${query.name}: the same core status in both Orthancs`).toBe(oursSide.core.status);
  expect(stockSide.core.answers.length, `${query.name}: the same core answers in both Orthancs`).toBe(oursSide.core.answers.length);
  return { ours: oursSide, stock: stockSide };
}

function title(query: FindQuery): string {
  const charset = query.charset ? `, in ${query.charset}` : '';
  return `[${query.level ?? '(no level)'}, ${query.model} root${charset}: ${query.keys.join(' | ')}]`;
}

describe('the same scenario in both Orthancs', () => {
  it('both plugins label what the tenants store at the same levels', () => {
    for (const keyword of Object.keys(ours.index)) {
      // Without the mark this plugin sets on patients of several senders (src/mixing.ts),
      // which the stock plugin does not have.
      const labelsOf = (side: Side) =>
        Object.fromEntries([...side.index[keyword]!.entries()].map(([key, labels]) => [key, [...labels].filter((label) => label !== 'multitenant-mixed').sort()]));
      expect(labelsOf(stock), keyword).toEqual(labelsOf(ours));
    }
  });
});

// Queries where the stock plugin, too, answers as the core: the common ground.
const COMMON: FindQuery[] = [
  q('PN wildcard, case-insensitive', 'PATIENT', 'patient', ['PatientName=doe*', 'PatientID']),
  q('PatientID wildcard', 'PATIENT', 'study', ['PatientName', 'PatientID=31337-P*']),
  q('StudyDate closed range', 'STUDY', 'study', ['PatientID', 'StudyDate=20150101-20191231']),
  q('StudyDate open range', 'STUDY', 'study', ['PatientID', 'StudyDate=20200101-']),
  q('StudyTime range', 'STUDY', 'study', ['PatientID', 'StudyDate', 'StudyTime=080000-120000']),
  q('SeriesInstanceUID list', 'SERIES', 'study', [`SeriesInstanceUID=${ROOT}.2.2.2.1\\${ROOT}.2.2.2.2\\${ROOT}.2.1.1.2`, 'Modality']),
  q('no SpecificCharacterSet, Latin-1 bytes', 'STUDY', 'study', ['PatientName=Müller*', 'PatientID'], { encodeAs: 'ISO_IR 100' }),
];

describe('where both plugins answer as the core', () => {
  for (const query of COMMON) {
    it(`${query.name} ${title(query)}`, async () => {
      const { ours: o, stock: s } = await bothSides(query);
      expect(o.core.answers.length, 'the core answers something').toBeGreaterThan(0);
      expect(o.lines, 'ours').toEqual([]);
      expect(s.lines, 'stock').toEqual([]);
    });
  }
});

interface Difference {
  /** What the stock plugin does differently. */
  name: string;
  query: FindQuery;
  /** Only these tenants (all by default). */
  tenants?: readonly TenantSpec[];
  /** Some difference of the stock plugin with the core matches this. */
  stock: RegExp;
  /** A direct check of the stock plugin's answers (through TENANT_A unless `tenants`), beyond the comparison. */
  check?: (stockOutcome: FindOutcome, core: FindOutcome) => void;
}

const RETURN_KEY_ABSENT = (tag: string) => new RegExp(`, \\(${tag}\\): core \\S+ \\[.*\\], tenant \\(absent\\)$`);

const DIFFERENCES: Difference[] = [
  // The five differences the brief asked to confirm.
  {
    name: 'refuses the IMAGE level (Failed: UnableToProcess)',
    query: q('IMAGE level', 'IMAGE', 'study', [`PatientID=${EXTRA.caseUpper.patientId}`, 'SOPClassUID']),
    stock: /: status: core "Success", tenant "Failed: UnableToProcess"$/,
    check: (outcome) => expect(outcome.answers).toHaveLength(0),
  },
  {
    name: 'uses SpecificCharacterSet as a matching key (only instances stored in ISO_IR 192 match)',
    query: q('every study, query in ISO_IR 192', 'STUDY', 'study', ['PatientID', 'PatientName'], { charset: 'ISO_IR 192' }),
    stock: /: missing StudyInstanceUID: /,
    check: (outcome, core) => {
      expect(core.answers.length).toBeGreaterThan(outcome.answers.length);
      // What the stock plugin still finds: studies stored in UTF-8 only (Ωμέγα, Иванов, Extra^Tags, Müller^Anna).
      for (const answer of outcome.answers) expect(valueOf(answer, 'PatientID')).toMatch(/^(31337-P2|31337-P7|CF-EXTRA|CF-UTF8)$/);
    },
  },
  {
    name: 'matches PatientID case-insensitively',
    query: q('PatientID=CF-CASE', 'PATIENT', 'patient', [`PatientID=${EXTRA.caseUpper.patientId}`, 'PatientName']),
    stock: new RegExp(`^TENANT_A: extra PatientID: ${EXTRA.caseLower.patientId}$`),
    check: (outcome) =>
      expect(outcome.answers.map((answer) => valueOf(answer, 'PatientID')).sort()).toEqual([EXTRA.caseUpper.patientId, EXTRA.caseLower.patientId]),
  },
  {
    name: 'returns no computed attribute (ModalitiesInStudy, SOPClassesInStudy, Number*Related*)',
    query: q('computed attributes', 'STUDY', 'study', [
      `StudyInstanceUID=${study(1, 1)}`,
      'ModalitiesInStudy',
      'SOPClassesInStudy',
      'NumberOfStudyRelatedSeries',
      'NumberOfStudyRelatedInstances',
      'NumberOfPatientRelatedStudies',
    ]),
    tenants: [TENANT_A],
    stock: RETURN_KEY_ABSENT('0008,0061'),
    check: (outcome) => {
      const [answer] = outcome.answers;
      for (const keyword of ['ModalitiesInStudy', 'SOPClassesInStudy', 'NumberOfStudyRelatedSeries', 'NumberOfStudyRelatedInstances']) {
        expect(answer?.[jsonTag(keyword)], keyword).toBeUndefined();
      }
    },
  },
  {
    name: 'returns no upper-level unique key (StudyInstanceUID at SERIES level)',
    query: q('series of a study', 'SERIES', 'study', [`StudyInstanceUID=${study(1, 1)}`, 'Modality', 'PatientID']),
    tenants: [TENANT_A],
    stock: RETURN_KEY_ABSENT('0020,000D'),
    check: (outcome) => {
      expect(outcome.answers).toHaveLength(2);
      for (const answer of outcome.answers) {
        expect(answer[jsonTag('StudyInstanceUID')], 'StudyInstanceUID').toBeUndefined();
        expect(answer[jsonTag('PatientID')], 'PatientID').toBeUndefined();
      }
    },
  },
  {
    name: 'returns no upper-level unique key at INSTANCE level (SeriesInstanceUID, StudyInstanceUID), nor SOPClassUID',
    query: q('instances of a patient', 'INSTANCE', 'study', [`PatientID=${EXTRA.caseUpper.patientId}`, 'StudyInstanceUID', 'SeriesInstanceUID', 'SOPClassUID']),
    tenants: [TENANT_A],
    stock: RETURN_KEY_ABSENT('0020,000E'),
  },

  // Differences found by this test.
  {
    name: 'matches every other VR case-insensitively too (AccessionNumber)',
    query: q('AccessionNumber=ACC-LOWER', 'STUDY', 'study', ['PatientID', 'AccessionNumber=ACC-LOWER']),
    stock: /: extra StudyInstanceUID: /,
  },
  {
    name: 'matches a wildcard on StudyDescription case-insensitively',
    query: q('StudyDescription=chest*', 'STUDY', 'study', ['PatientID', 'StudyDescription=chest*']),
    stock: /: extra StudyInstanceUID: /,
  },
  {
    name: 'matches Modality case-insensitively ("ct" finds CT series)',
    query: q('Modality=ct', 'SERIES', 'study', ['Modality=ct']),
    stock: /: extra SeriesInstanceUID: /,
  },
  {
    name: 'uses TimezoneOffsetFromUTC as a matching key',
    query: q('TimezoneOffsetFromUTC=+0500', 'STUDY', 'study', ['PatientID', 'TimezoneOffsetFromUTC=+0500']),
    stock: /: missing StudyInstanceUID: /,
  },
  {
    name: 'leaves out the requested attributes that have no value (the core returns them empty)',
    query: q('every patient', 'PATIENT', 'patient', ['PatientName', 'PatientID', 'PatientBirthDate', 'PatientSex']),
    stock: RETURN_KEY_ABSENT('0010,0030'),
  },
  {
    name: 'returns its AET for a RetrieveAETitle asked as a return key (the core returns it empty)',
    query: q('RetrieveAETitle asked', 'STUDY', 'study', [`StudyInstanceUID=${study(1, 1)}`, 'RetrieveAETitle']),
    tenants: [TENANT_A],
    stock: /, \(0008,0054\): core AE \[\], tenant AE \[TENANT_A\]$/,
  },
  {
    name: 'refuses the lower-case level "study" that the core accepts',
    query: q('lower-case level', 'study', 'study', [`StudyInstanceUID=${study(1, 1)}`]),
    tenants: [TENANT_A],
    stock: /: status: core "Success", tenant "Failed: UnableToProcess"$/,
  },
  {
    name: 'refuses the level "STUDIES" that the core accepts',
    query: q('STUDIES', 'STUDIES', 'study', [`StudyInstanceUID=${study(1, 1)}`]),
    tenants: [TENANT_A],
    stock: /: status: core "Success", tenant "Failed: UnableToProcess"$/,
  },
  {
    name: 'finds no study by Modality, a series attribute, at STUDY level',
    query: q('Modality=MR at STUDY level', 'STUDY', 'study', ['PatientID', 'Modality=MR']),
    // Not TENANT_B: ours misses a study there too (find.test.ts, BUG_ENTITLED_CANDIDATES).
    tenants: [TENANT_A],
    stock: /: missing StudyInstanceUID: /,
  },
];

describe('where the stock plugin differs from the core, and ours does not', () => {
  for (const difference of DIFFERENCES) {
    it(`the stock plugin ${difference.name} ${title(difference.query)}`, async () => {
      const tenants = difference.tenants ?? TENANTS;
      const { ours: o, stock: s } = await bothSides(difference.query, tenants);
      expect(o.lines, 'ours answers as the core').toEqual([]);
      expect(s.lines, 'the stock plugin differs from the core').not.toEqual([]);
      expect(s.lines.filter((line) => difference.stock.test(line)), `the stock plugin: ${difference.name}`).not.toEqual([]);
      difference.check?.(s.outcomes[0]!, s.core);
    });
  }
});

// Last: the stock tenant's only thread (DicomThreadsCount 1) stays busy for about 30 s after this.
describe('a query that Orthanc refuses', () => {
  it('the core and our tenant answer "Failed: UnableToProcess" at once; the stock tenant does not answer at all', async () => {
    const query = q('StudyDate=2010*', 'STUDY', 'study', ['StudyDate=2010*']);
    const [oursCore, stockCore, oursTenant, stockTenant] = await Promise.all([
      viaCore(ours, query),
      viaCore(stock, query),
      viaTenant(ours, TENANT_A, query, 5),
      viaTenant(stock, TENANT_A, query, 5),
    ]);
    expect(oursCore.status).toBe('Failed: UnableToProcess');
    expect(stockCore.status).toBe('Failed: UnableToProcess');
    expect(oursTenant.status).toBe('Failed: UnableToProcess');
    // The stock plugin's /tools/find call throws a PluginException that Orthanc's C-FIND SCP does not
    // catch ("Native exception while handling some runnable object" about 30 s later): no response.
    expect(stockTenant.status).toMatch(/^no final response \(/);
    expect(stockTenant.answers).toHaveLength(0);
    expect(stock.deployment.orthanc.log()).toContain('Wildcards are not allowed on tag 0008,0020');
  });
});
