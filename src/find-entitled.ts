// C-FIND on resources of patients that hold, or held, instances of other senders
// (another tenant's, or sent to Orthanc's own port): every value and count in the
// tenant's answer must then come from its entitled instances only. Resources of other
// patients keep the answer Orthanc computed.
//
// Values read back from Orthanc (PatientIDs, UIDs) become /tools/find constraints only
// when they match exactly themselves there (dicom.ts isExactlyMatchable); the others are
// reached through Orthanc identifiers.
import type { FindAnswer } from './bridge.js';
import type { DicomOptions, TenantConfig } from './configuration.js';
import { COMPUTED_COUNTERS, depth, isExactlyMatchable, orthancId, Tags, UNIQUE_KEY, URI_PREFIX, type ResourceLevel } from './dicom.js';
import { entitledLevel, negatedConstraints, satisfies } from './entitlement.js';
import type { Mixing } from './mixing.js';
import { FEW_PATIENTS, type Orthanc } from './orthanc.js';
import type { ParsedQuery, QueryElement } from './query.js';
import { hasWildcard, wildcardToRegExp } from './wildcards.js';

/**
 * Orthanc answers lists of UIDs in chunks: SQL statements have a bounded size. UIDs have
 * no letters, so these queries leave CaseSensitive off, which lets Orthanc page them.
 */
const CHUNK = 500;

export interface FoundResource {
  ID: string;
  RequestedTags?: Record<string, unknown>;
  Labels?: string[];
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

/**
 * The tenant's view of the resources found at the query level: unchanged for a patient
 * that holds only the tenant's instances and never held another sender's; recomputed from
 * the entitled instances otherwise; dropped when they hold none, or when the tenant's
 * own values do not match the query.
 */
export async function restrictToEntitled(
  orthanc: Orthanc,
  mixing: Mixing,
  tenant: TenantConfig,
  options: DicomOptions,
  query: ParsedQuery,
  resources: FoundResource[],
  answerOf: (values: Record<string, unknown>, resource: FoundResource) => FindAnswer,
): Promise<FindAnswer[]> {
  const level = query.level;
  const candidates = await withEntitledAncestor(orthanc, tenant, level, resources);
  const patients = unique(candidates.map(patientOf));
  // Both lookups at once: each waits for Orthanc and for a wake-up of this thread, and a
  // request that waits for them one after the other pays both. A marked patient is
  // answered from the tenant's instances whatever it holds now; marked patients are rare,
  // so their lookup of other senders' resources is rarely wasted.
  const [marked, holdingOthers] = await Promise.all([
    mixing.markedAmong(orthanc, patients),
    patientsHoldingOthers(orthanc, tenant, patients),
  ]);
  const sharedNow = new Set([...holdingOthers].filter((patient) => !marked.has(patient)));
  mixing.noticeShared([...sharedNow]);

  const answers: FindAnswer[] = [];
  for (const resource of candidates) {
    const patient = patientOf(resource);
    if (!sharedNow.has(patient) && !marked.has(patient)) {
      answers.push(answerOf(resource.RequestedTags ?? {}, resource));
      continue;
    }
    const values = await entitledValues(orthanc, tenant, query, resource);
    if (values !== undefined && query.constraints.every((constraint) => matchesConstraint(constraint, values[constraint.tag], options))) {
      answers.push(answerOf(values, resource));
    }
  }
  return answers;
}

/** When the entitlement level is above the query level, the resources whose ancestor there is the tenant's. */
async function withEntitledAncestor(orthanc: Orthanc, tenant: TenantConfig, level: ResourceLevel, resources: FoundResource[]): Promise<FoundResource[]> {
  const entitlement = entitledLevel(tenant);
  if (depth(entitlement) >= depth(level)) return resources;
  const key = UNIQUE_KEY[entitlement];
  const ancestorOf = (resource: FoundResource) => stringOf(resource.RequestedTags?.[key]) ?? '';
  const entitled = new Set<string>();
  for (const chunk of chunks(unique(resources.map(ancestorOf)).filter(isExactlyMatchable))) {
    const found = await orthanc.find<FoundResource>({
      Level: entitlement,
      Query: { [key]: chunk.join('\\') },
      Labels: tenant.labels,
      LabelsConstraint: tenant.labelsConstraint,
      Expand: true,
      Short: true,
      RequestedTags: [key],
    });
    for (const ancestor of found) entitled.add(ancestorOf(ancestor));
  }
  const kept = await Promise.all(
    resources.map(async (resource) => {
      if (isExactlyMatchable(ancestorOf(resource))) return entitled.has(ancestorOf(resource));
      const ancestor = await orthanc.getJson<FoundResource>(`${URI_PREFIX[level]}${resource.ID}/${singular(entitlement)}`);
      return satisfies(tenant, ancestor.Labels ?? []);
    }),
  );
  return resources.filter((_, index) => kept[index]);
}

/** The PatientIDs among these whose patient holds something that is not the tenant's (at its entitlement level). */
async function patientsHoldingOthers(orthanc: Orthanc, tenant: TenantConfig, patients: string[]): Promise<Set<string>> {
  const entitlement = entitledLevel(tenant);
  const shared = new Set<string>();
  if (patients.length <= FEW_PATIENTS && entitlement !== 'Patient' && (await orthanc.supportsExtendedFind())) {
    // Looked up under each patient (Orthanc's parent index): far cheaper than matching
    // PatientIDs across the whole index, for the few patients of a narrow query. One
    // match is enough: Orthanc stops there instead of listing a large sender's resources.
    await Promise.all(
      patients.flatMap((patient) =>
        negatedConstraints(tenant).map(async (negation) => {
          const request = { Level: entitlement, Query: {}, ParentPatient: orthancId(patient), ...negation };
          const holdsOthers = (await orthanc.findAtMost<string>(request, 0)) === undefined; // more than none
          if (holdsOthers) shared.add(patient);
        }),
      ),
    );
    return shared;
  }
  for (const negation of negatedConstraints(tenant)) {
    for (const chunk of chunks(patients.filter(isExactlyMatchable))) {
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
  await Promise.all(
    patients
      .filter((patient) => !isExactlyMatchable(patient))
      .map(async (patient) => {
        const uri = `/patients/${orthancId(patient)}`;
        const held = entitlement === 'Patient' ? [await orthanc.getJson<FoundResource>(uri)] : await orthanc.getJson<FoundResource[]>(`${uri}/${plural(entitlement)}`);
        if (held.some((resource) => !satisfies(tenant, resource.Labels ?? []))) shared.add(patient);
      }),
  );
  return shared;
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
  resource: FoundResource,
): Promise<Record<string, unknown> | undefined> {
  const instances = await entitledInstancesOf(orthanc, tenant, query.level, resource);
  if (instances.length === 0) return undefined;

  const valueOf = (instance: EntitledInstance, tag: string) => stringOf(instance.RequestedTags?.[tag]) ?? '';
  const distinct = (tag: string) => unique(instances.map((instance) => valueOf(instance, tag))).sort();
  // As the core: the counters of the query level; asked at another level, they are empty.
  const counters: Record<string, string> = Object.fromEntries(COMPUTED_COUNTERS.map((tag) => [tag, '']));
  if (query.level === 'Patient') {
    counters[Tags.NumberOfPatientRelatedStudies] = String(distinct(UNIQUE_KEY.Study).length);
    counters[Tags.NumberOfPatientRelatedSeries] = String(distinct(UNIQUE_KEY.Series).length);
    counters[Tags.NumberOfPatientRelatedInstances] = String(instances.length);
  } else if (query.level === 'Study') {
    counters[Tags.NumberOfStudyRelatedSeries] = String(distinct(UNIQUE_KEY.Series).length);
    counters[Tags.NumberOfStudyRelatedInstances] = String(instances.length);
    counters[Tags.SOPClassesInStudy] = distinct(Tags.SOPClassUID).join('\\');
    // A series' Modality in Orthanc's index may be another sender's: read the tenant's own.
    if (query.returnedTags.includes(Tags.ModalitiesInStudy)) {
      const modalities = await Promise.all(
        distinct(UNIQUE_KEY.Series).map(async (series) => {
          const first = instances.find((instance) => valueOf(instance, UNIQUE_KEY.Series) === series)!;
          const tags = await orthanc.getJson<Record<string, unknown>>(`/instances/${first.ID}/tags?short`);
          return stringOf(tags[Tags.Modality]) ?? '';
        }),
      );
      counters[Tags.ModalitiesInStudy] = unique(modalities.filter((modality) => modality !== '')).sort().join('\\');
    }
  } else if (query.level === 'Series') {
    counters[Tags.NumberOfSeriesRelatedInstances] = String(instances.length);
  }

  // Other values: as one of the tenant's own instances has them (the first one, by UID).
  const first = [...instances].sort((a, b) => valueOf(a, UNIQUE_KEY.Instance).localeCompare(valueOf(b, UNIQUE_KEY.Instance)))[0]!;
  const tags = await orthanc.getJson<Record<string, unknown>>(`/instances/${first.ID}/tags?short`);
  const values: Record<string, unknown> = {};
  // What no file holds (e.g. InstanceAvailability, which Orthanc computes) is Orthanc's value.
  for (const tag of query.returnedTags) values[tag] = counters[tag] ?? tags[tag] ?? resource.RequestedTags?.[tag];
  return values;
}

const INSTANCE_TAGS = [UNIQUE_KEY.Study, UNIQUE_KEY.Series, UNIQUE_KEY.Instance, Tags.SOPClassUID];

async function entitledInstancesOf(orthanc: Orthanc, tenant: TenantConfig, level: ResourceLevel, resource: FoundResource): Promise<EntitledInstance[]> {
  const entitlement = entitledLevel(tenant);
  const labelFilter = { Labels: tenant.labels, LabelsConstraint: tenant.labelsConstraint };
  const patientId = patientOf(resource);
  const uid = stringOf(resource.RequestedTags?.[UNIQUE_KEY[level]]) ?? '';
  if (!isExactlyMatchable(patientId) || !isExactlyMatchable(uid)) return entitledInstancesThroughIds(orthanc, tenant, level, resource.ID);

  // The UID with the PatientID: the same Study Instance UID may exist under two patients.
  // Kept on exact equality: /tools/find ignores case (and can page only then), and a
  // PatientID may differ from another one by case only.
  const ofThisPatient = <T extends FoundResource>(found: T[]) => found.filter((item) => patientOf(item) === patientId);
  let restriction: Record<string, string> = { [UNIQUE_KEY.Patient]: patientId, [UNIQUE_KEY[level]]: uid };
  if (entitlement !== 'Instance') {
    // Instances carry no labels: find the entitled resources at their level first, by the
    // keys at or above that level (Orthanc matches nothing on a key below a find's level).
    const above = depth(entitlement) < depth(level);
    const ancestor = stringOf(resource.RequestedTags?.[UNIQUE_KEY[entitlement]]) ?? '';
    if (above && !isExactlyMatchable(ancestor)) return entitledInstancesThroughIds(orthanc, tenant, level, resource.ID);
    const entitled = ofThisPatient(
      await orthanc.find<FoundResource>({
        Level: entitlement,
        Query: above ? { [UNIQUE_KEY.Patient]: patientId, [UNIQUE_KEY[entitlement]]: ancestor } : restriction,
        ...labelFilter,
        Expand: true,
        Short: true,
        RequestedTags: [UNIQUE_KEY[entitlement], UNIQUE_KEY.Patient],
      }),
    );
    if (entitled.length === 0) return [];
    const uids = entitled.map((found) => stringOf(found.RequestedTags?.[UNIQUE_KEY[entitlement]]) ?? '');
    if (!uids.every(isExactlyMatchable)) return entitledInstancesThroughIds(orthanc, tenant, level, resource.ID);
    restriction = { ...restriction, [UNIQUE_KEY[entitlement]]: uids.join('\\') };
  }
  return ofThisPatient(
    await orthanc.find<EntitledInstance>({
      Level: 'Instance',
      Query: restriction,
      ...(entitlement === 'Instance' ? labelFilter : {}),
      Expand: true,
      Short: true,
      RequestedTags: [...INSTANCE_TAGS, UNIQUE_KEY.Patient],
    }),
  );
}

/** The same, by Orthanc identifiers: for values that cannot be matched exactly by /tools/find. */
async function entitledInstancesThroughIds(orthanc: Orthanc, tenant: TenantConfig, level: ResourceLevel, resourceId: string): Promise<EntitledInstance[]> {
  const entitlement = entitledLevel(tenant);
  const uri = `${URI_PREFIX[level]}${resourceId}`;
  // The resources at the entitlement level that hold the resource's instances.
  const holders =
    depth(entitlement) > depth(level)
      ? await orthanc.getJson<FoundResource[]>(`${uri}/${plural(entitlement)}`)
      : [await orthanc.getJson<FoundResource>(entitlement === level ? uri : `${uri}/${singular(entitlement)}`)];
  const entitled = holders.filter((holder) => satisfies(tenant, holder.Labels ?? []));
  const instanceIds =
    entitlement === 'Instance'
      ? entitled.map((holder) => holder.ID)
      : depth(entitlement) <= depth(level)
        ? entitled.length > 0
          ? (await orthanc.getJson<FoundResource[]>(`${uri}/instances`)).map((instance) => instance.ID)
          : []
        : (await Promise.all(entitled.map((holder) => orthanc.getJson<FoundResource[]>(`${URI_PREFIX[entitlement]}${holder.ID}/instances`)))).flat().map((instance) => instance.ID);
  return Promise.all(
    instanceIds.map(async (id) => {
      const tags = await orthanc.getJson<Record<string, unknown>>(`/instances/${id}/tags?short`);
      return { ID: id, RequestedTags: Object.fromEntries(INSTANCE_TAGS.map((tag) => [tag, tags[tag]])) };
    }),
  );
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

// The REST routes from a resource to its parent or children: /series/{id}/study, /studies/{id}/instances...
function singular(level: ResourceLevel): string {
  return level.toLowerCase();
}

function plural(level: ResourceLevel): string {
  return URI_PREFIX[level].slice(1, -1);
}

function patientOf(resource: FoundResource): string {
  return stringOf(resource.RequestedTags?.[UNIQUE_KEY.Patient]) ?? '';
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
