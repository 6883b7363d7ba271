// C-FIND on resources that also hold instances that are not the tenant's (another
// tenant's, or sent to Orthanc's own port): every value and count in the tenant's
// answer must come from its entitled instances only. Resources holding only entitled
// instances keep the answer Orthanc computed.
import type { DicomOptions, ResourceLevel, TenantConfig } from './configuration.js';
import { depth, entitledLevel, negatedConstraints, UNIQUE_KEY } from './entitlement.js';
import { Tags, type ParsedQuery, type QueryElement } from './find.js';
import type { Orthanc } from './orthanc.js';
import { hasWildcard, wildcardToRegExp } from './wildcards.js';


const SOP_CLASS_UID = '0008,0016';
const MODALITY = '0008,0060';

const COUNTERS = {
  NumberOfPatientRelatedStudies: '0020,1200',
  NumberOfPatientRelatedSeries: '0020,1202',
  NumberOfPatientRelatedInstances: '0020,1204',
  NumberOfStudyRelatedSeries: '0020,1206',
  NumberOfStudyRelatedInstances: '0020,1208',
  NumberOfSeriesRelatedInstances: '0020,1209',
  SOPClassesInStudy: '0008,0062',
} as const;

/**
 * Orthanc answers lists of UIDs in chunks: SQL statements have a bounded size. UIDs have
 * no letters, so these queries leave CaseSensitive off, which lets Orthanc page them.
 */
const CHUNK = 500;

export interface FoundResource {
  ID: string;
  RequestedTags?: Record<string, unknown>;
}

/**
 * Tags the main query must also ask for, so that entitlement can be decided: the
 * PatientID, the query level's unique key, and the entitlement level's when it is above
 * (never a tag below the query level: Orthanc could not page such a query).
 */
export function tagsForEntitlement(level: ResourceLevel, tenant: Pick<TenantConfig, 'labelsStoreLevels'>): string[] {
  const entitlement = entitledLevel(tenant);
  const keys = [UNIQUE_KEY.Patient, UNIQUE_KEY[level]];
  if (depth(entitlement) < depth(level)) keys.push(UNIQUE_KEY[entitlement]);
  return unique(keys);
}

type Answer = Record<string, string>;

/**
 * The tenant's view of the resources found at the query level: unchanged when they hold
 * only entitled instances; recomputed from the entitled instances otherwise; dropped when
 * they hold none, or when the tenant's own values do not match the query.
 */
export async function restrictToEntitled(
  orthanc: Orthanc,
  tenant: TenantConfig,
  options: DicomOptions,
  query: ParsedQuery,
  resources: FoundResource[],
  answerOf: (values: Record<string, unknown>) => Answer,
): Promise<Answer[]> {
  const level = query.level;
  const entitlement = entitledLevel(tenant);
  const labelFilter = { Labels: tenant.labels, LabelsConstraint: tenant.labelsConstraint };
  const uidOf = (resource: FoundResource, key: string) => stringOf(resource.RequestedTags?.[key]) ?? '';
  const patientOf = (resource: FoundResource) => uidOf(resource, UNIQUE_KEY.Patient);

  let candidates = resources;
  if (depth(entitlement) < depth(level)) {
    // The entitlement level is above: all instances of a resource share that ancestor.
    const ancestors = unique(candidates.map((resource) => uidOf(resource, UNIQUE_KEY[entitlement])));
    const entitled = new Set<string>();
    for (const chunk of chunks(ancestors)) {
      const found = await orthanc.find<FoundResource>({
        Level: entitlement,
        Query: { [UNIQUE_KEY[entitlement]]: chunk.join('\\') },
        ...labelFilter,
        Expand: true,
        Short: true,
        RequestedTags: [UNIQUE_KEY[entitlement]],
      });
      for (const ancestor of found) entitled.add(uidOf(ancestor, UNIQUE_KEY[entitlement]));
    }
    candidates = candidates.filter((resource) => entitled.has(uidOf(resource, UNIQUE_KEY[entitlement])));
  }

  // A patient that also holds what is not the tenant's may carry values (of the patient,
  // a study, a series) that came from another sender: its resources are answered from the
  // tenant's own instances. The others keep Orthanc's answer.
  const patients = unique(candidates.map(patientOf));
  const shared = new Set<string>();
  for (const negation of negatedConstraints(tenant)) {
    for (const chunk of chunks(patients)) {
      const foreign = await orthanc.find<FoundResource>({
        Level: entitlement,
        Query: { [UNIQUE_KEY.Patient]: chunk.join('\\') },
        ...negation,
        Expand: true,
        Short: true,
        RequestedTags: [UNIQUE_KEY.Patient],
      });
      for (const resource of foreign) shared.add(patientOf(resource));
    }
  }

  const answers: Answer[] = [];
  for (const resource of candidates) {
    if (!shared.has(patientOf(resource))) {
      answers.push(answerOf(resource.RequestedTags ?? {}));
      continue;
    }
    const values = await entitledValues(orthanc, tenant, query, patientOf(resource), uidOf(resource, UNIQUE_KEY[level]), resource.RequestedTags ?? {});
    if (values !== undefined && query.constraints.every((constraint) => matchesConstraint(constraint, values[constraint.tag], options))) {
      answers.push(answerOf(values));
    }
  }
  return answers;
}

interface EntitledInstance {
  ID: string;
  RequestedTags?: Record<string, unknown>;
}

/**
 * The values of a shared resource as the tenant's entitled instances give them: the
 * counters computed over them, every other requested tag read from one of them.
 */
async function entitledValues(
  orthanc: Orthanc,
  tenant: TenantConfig,
  query: ParsedQuery,
  patientId: string,
  uid: string,
  orthancValues: Record<string, unknown>,
): Promise<Record<string, unknown> | undefined> {
  const instances = await entitledInstancesOf(orthanc, tenant, query.level, patientId, uid);
  if (instances.length === 0) return undefined;

  const distinct = (tag: string) => unique(instances.map((instance) => stringOf(instance.RequestedTags?.[tag]) ?? '')).sort();
  // As the core: the counters of the query level; asked at another level, they are empty.
  const counters: Record<string, string> = {
    [COUNTERS.NumberOfPatientRelatedStudies]: '',
    [COUNTERS.NumberOfPatientRelatedSeries]: '',
    [COUNTERS.NumberOfPatientRelatedInstances]: '',
    [COUNTERS.NumberOfStudyRelatedSeries]: '',
    [COUNTERS.NumberOfStudyRelatedInstances]: '',
    [COUNTERS.NumberOfSeriesRelatedInstances]: '',
    [COUNTERS.SOPClassesInStudy]: '',
    [Tags.ModalitiesInStudy]: '',
  };
  if (query.level === 'Patient') {
    counters[COUNTERS.NumberOfPatientRelatedStudies] = String(distinct(UNIQUE_KEY.Study).length);
    counters[COUNTERS.NumberOfPatientRelatedSeries] = String(distinct(UNIQUE_KEY.Series).length);
    counters[COUNTERS.NumberOfPatientRelatedInstances] = String(instances.length);
  } else if (query.level === 'Study') {
    counters[COUNTERS.NumberOfStudyRelatedSeries] = String(distinct(UNIQUE_KEY.Series).length);
    counters[COUNTERS.NumberOfStudyRelatedInstances] = String(instances.length);
    counters[COUNTERS.SOPClassesInStudy] = distinct(SOP_CLASS_UID).join('\\');
    // A series' Modality in Orthanc's index may be another sender's: read the tenant's own.
    if (query.returnedTags.includes(Tags.ModalitiesInStudy)) {
      const modalities = await Promise.all(
        unique(instances.map((instance) => stringOf(instance.RequestedTags?.[UNIQUE_KEY.Series]) ?? '')).map(async (series) => {
          const first = instances.find((instance) => stringOf(instance.RequestedTags?.[UNIQUE_KEY.Series]) === series)!;
          const tags = await orthanc.getJson<Record<string, unknown>>(`/instances/${first.ID}/tags?short`);
          return stringOf(tags[MODALITY]) ?? '';
        }),
      );
      counters[Tags.ModalitiesInStudy] = unique(modalities.filter((modality) => modality !== '')).sort().join('\\');
    }
  } else if (query.level === 'Series') {
    counters[COUNTERS.NumberOfSeriesRelatedInstances] = String(instances.length);
  }

  // Other values: as one of the tenant's own instances has them (the first one, by UID).
  const first = [...instances].sort((a, b) => (stringOf(a.RequestedTags?.[UNIQUE_KEY.Instance]) ?? '').localeCompare(stringOf(b.RequestedTags?.[UNIQUE_KEY.Instance]) ?? ''))[0]!;
  const tags = await orthanc.getJson<Record<string, unknown>>(`/instances/${first.ID}/tags?short`);
  const values: Record<string, unknown> = {};
  // What no file holds (e.g. InstanceAvailability, which Orthanc computes) is Orthanc's value.
  for (const tag of query.returnedTags) values[tag] = counters[tag] ?? tags[tag] ?? orthancValues[tag];
  return values;
}

async function entitledInstancesOf(
  orthanc: Orthanc,
  tenant: TenantConfig,
  level: ResourceLevel,
  patientId: string,
  uid: string,
): Promise<EntitledInstance[]> {
  const entitlement = entitledLevel(tenant);
  const requested = [UNIQUE_KEY.Study, UNIQUE_KEY.Series, UNIQUE_KEY.Instance, SOP_CLASS_UID];
  const labelFilter = { Labels: tenant.labels, LabelsConstraint: tenant.labelsConstraint };
  // The UID with the PatientID: the same Study Instance UID may exist under two patients.
  let restriction: Record<string, string> = { [UNIQUE_KEY.Patient]: patientId, [UNIQUE_KEY[level]]: uid };
  if (entitlement !== 'Instance') {
    // Instances carry no labels: find the entitled resources at their level first.
    const entitled = await orthanc.find<FoundResource>({
      Level: entitlement,
      Query: restriction,
      ...labelFilter,
      Expand: true,
      Short: true,
      RequestedTags: [UNIQUE_KEY[entitlement]],
    });
    if (entitled.length === 0) return [];
    restriction = {
      ...restriction,
      [UNIQUE_KEY[entitlement]]: entitled.map((resource) => stringOf(resource.RequestedTags?.[UNIQUE_KEY[entitlement]]) ?? '').join('\\'),
    };
  }
  return orthanc.find<EntitledInstance>({
    Level: 'Instance',
    Query: restriction,
    ...(entitlement === 'Instance' ? labelFilter : {}),
    Expand: true,
    Short: true,
    RequestedTags: requested,
  });
}

/**
 * DICOM matching of one constraint against a value, as Orthanc's C-FIND: UID lists,
 * date and time ranges, wildcards, and PN case-insensitive unless CaseSensitivePN.
 */
export function matchesConstraint(
  constraint: QueryElement,
  value: unknown,
  options: Pick<DicomOptions, 'caseSensitivePN'>,
): boolean {
  const pattern = constraint.value ?? '';
  if (pattern === '') return true;
  const caseInsensitive = constraint.vr === 'PN' && !options.caseSensitivePN;
  const normalize = (text: string) => (caseInsensitive ? foldCase(text) : text);
  const stored = (typeof value === 'string' ? value : '').split('\\').map(normalize);

  if (pattern.includes('\\')) {
    const wanted = pattern.split('\\').map(normalize);
    return stored.some((item) => wanted.includes(item));
  }
  if ((constraint.vr === 'DA' || constraint.vr === 'TM' || constraint.vr === 'DT') && pattern.includes('-')) {
    const [lower = '', upper = ''] = pattern.split('-');
    return stored.some((item) => item !== '' && (lower === '' || item >= lower) && (upper === '' || item <= upper));
  }
  if (hasWildcard(pattern)) {
    const regex = wildcardToRegExp(normalize(pattern));
    return stored.some((item) => regex.test(item));
  }
  return stored.includes(normalize(pattern));
}

// Orthanc compares case-insensitively after removing accents and upper-casing.
function foldCase(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toUpperCase();
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}

function chunks<T>(items: T[]): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += CHUNK) result.push(items.slice(start, start + CHUNK));
  return result;
}

function stringOf(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
