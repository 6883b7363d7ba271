// C-MOVE and C-GET through a tenant: which instances are sent. The resources are
// those whose unique key equals, exactly, one of the values of the request (as Orthanc's
// own C-MOVE SCP looks them up: a value with "*" or "?" is a literal, not a wildcard),
// under the tenant's label constraint at the query level; then exactly the tenant's
// entitled instances within them are sent (see entitlement.ts).
import type { Handler } from './handler.js';
import type { QueryElement, Requests, RetrievePlan } from './bridge.js';
import { parseResourceLevel, type DicomOptions, type TenantConfig } from './configuration.js';
import { depth, isExactlyMatchable, LEVELS, Tags, UNIQUE_KEY, URI_PREFIX, type ResourceLevel } from './dicom.js';
import { entitledLevel, satisfies } from './entitlement.js';
import { firstModalityWithAet, readModalities } from './modalities.js';
import type { FindRequest, Orthanc } from './orthanc.js';

export class RetrieveRequestError extends Error {}

/** The unique key of each level as Orthanc names it in a resource's MainDicomTags. */
const IDENTIFIER_NAME: Record<ResourceLevel, string> = {
  Patient: 'PatientID',
  Study: 'StudyInstanceUID',
  Series: 'SeriesInstanceUID',
  Instance: 'SOPInstanceUID',
};

export interface RetrieveKeys {
  level: ResourceLevel;
  tag: string; // the key the resources are looked up by
  values: string[]; // exact values (a backslash-separated list in the request)
}

/**
 * The level and key of a C-MOVE or C-GET identifier, as OrthancMoveRequestHandler reads
 * them: the unique key of the level (AccessionNumber first at STUDY level); without a
 * QueryRetrieveLevel, the deepest level whose key is present. Each value of the list is
 * looked up as is; empty items match nothing (as in the core).
 */
export function retrieveKeys(elements: QueryElement[]): RetrieveKeys {
  const valueOf = (tag: string) => elements.find((element) => element.tag === tag)?.value ?? undefined;
  const keysAt = (level: ResourceLevel): RetrieveKeys | undefined => {
    const accession = level === 'Study' ? valueOf(Tags.AccessionNumber) : undefined;
    const tag = accession !== undefined && accession !== '' ? Tags.AccessionNumber : UNIQUE_KEY[level];
    const value = valueOf(tag);
    if (value === undefined) return undefined;
    return { level, tag, values: [...new Set(value.split('\\').filter((item) => item !== ''))] };
  };

  const levelValue = valueOf(Tags.QueryRetrieveLevel)?.trim();
  if (levelValue === undefined || levelValue === '') {
    for (const level of [...LEVELS].reverse()) {
      const keys = keysAt(level);
      if (keys !== undefined) return keys;
    }
    throw new RetrieveRequestError('the request has no QueryRetrieveLevel and no unique key');
  }
  const level = parseResourceLevel(levelValue);
  if (level === undefined) throw new RetrieveRequestError(`invalid QueryRetrieveLevel: "${levelValue}"`);
  const keys = keysAt(level);
  if (keys === undefined) throw new RetrieveRequestError(`a ${level.toUpperCase()} level request needs its unique key ${UNIQUE_KEY[level]}`);
  return keys;
}

interface Found {
  ID: string;
  RequestedTags?: Record<string, string>;
  Labels?: string[];
}

/** The instances a retrieve sends from one study (the audit trail names the study once one is sent). */
export interface StudyGroup {
  patientId: string;
  studyInstanceUid: string;
  instances: string[];
}

/** Orthanc identifiers of the instances a retrieve sends, each once, by study, in a stable order. */
export async function instancesToRetrieve(orthanc: Orthanc, tenant: TenantConfig, elements: QueryElement[]): Promise<StudyGroup[]> {
  const keys = retrieveKeys(elements);
  const groups = await entitledGroups(orthanc, tenant, keys);
  if (keys.tag !== Tags.AccessionNumber) return groups;
  // The AccessionNumber Orthanc keeps for a study comes from its first instance, maybe
  // another sender's: keep the instances whose own file has the requested one.
  const kept = await Promise.all(
    groups.map(async (group) => {
      const flags = await Promise.all(
        group.instances.map(async (id) => {
          const tags = await orthanc.getJson<Record<string, unknown>>(`/instances/${id}/tags?short`);
          const accession = tags[Tags.AccessionNumber];
          return keys.values.includes(typeof accession === 'string' ? accession : '');
        }),
      );
      return { ...group, instances: group.instances.filter((_, index) => flags[index]) };
    }),
  );
  return kept.filter((group) => group.instances.length > 0);
}

/** The tags that place a resource in its study (never below the level: no file is read). */
function placingTags(level: ResourceLevel): string[] {
  return level === 'Patient' ? [Tags.PatientID] : [Tags.PatientID, Tags.StudyInstanceUID];
}

/** The resources at the query level whose key equals one of the values, that the tenant sees there. */
async function resourcesWithKeys(orthanc: Orthanc, tenant: TenantConfig, keys: RetrieveKeys): Promise<Found[]> {
  const requested = [...new Set([keys.tag, UNIQUE_KEY[keys.level], ...placingTags(keys.level)])];
  const labelFilter = { Labels: tenant.labels, LabelsConstraint: tenant.labelsConstraint };
  const matchable = keys.values.filter(isExactlyMatchable);
  // Matched without case, which lets Orthanc page the answer, then kept only on exact equality.
  const found =
    matchable.length === 0
      ? []
      : await orthanc.find<Found>({ Level: keys.level, Query: { [keys.tag]: matchable.join('\\') }, ...labelFilter, Expand: true, Short: true, RequestedTags: requested });
  const literal = keys.values.filter((value) => !isExactlyMatchable(value));
  if (literal.length > 0) found.push(...(await resourcesWithLiteralKeys(orthanc, tenant, keys, literal, { ...labelFilter, Expand: true, Short: true, RequestedTags: requested })));
  const seen = new Set<string>();
  return found.filter((resource) => keys.values.includes(resource.RequestedTags?.[keys.tag] ?? '') && !seen.has(resource.ID) && seen.add(resource.ID));
}

/**
 * Values that /tools/find would read as wildcards, lists or "anything": Orthanc's
 * /tools/lookup finds the resources whose identifier is exactly the value; an
 * AccessionNumber (not an identifier there) is matched as a pattern by a /tools/find
 * restricted to the tenant's labels, then kept on equality (by the caller).
 */
async function resourcesWithLiteralKeys(
  orthanc: Orthanc,
  tenant: TenantConfig,
  keys: RetrieveKeys,
  values: string[],
  findOptions: Omit<FindRequest, 'Level' | 'Query'>,
): Promise<Found[]> {
  if (keys.tag === Tags.AccessionNumber) {
    return orthanc.find<Found>({ Level: keys.level, Query: { [keys.tag]: values.join('\\') }, ...findOptions });
  }
  const found: Found[] = [];
  for (const value of values) {
    const matches = await orthanc.postRawForJson<{ ID: string; Type: string }[]>('/tools/lookup', value);
    for (const match of matches.filter((candidate) => candidate.Type === keys.level)) {
      // /tools/lookup ignores case: keep only the resource whose identifier is the value itself.
      const resource = await orthanc.getJson<{ Labels?: string[]; MainDicomTags?: Record<string, string> }>(`${URI_PREFIX[keys.level]}${match.ID}`);
      const identifier = resource.MainDicomTags?.[IDENTIFIER_NAME[keys.level]];
      if (identifier === value && satisfies(tenant, resource.Labels ?? [])) found.push({ ID: match.ID, RequestedTags: { [keys.tag]: value } });
    }
  }
  return found;
}

/** A resource at the tenant's entitlement level (or at the query level, when that is deeper) that the retrieve sends whole. */
interface Unit {
  level: ResourceLevel;
  ID: string;
  patientId?: string;
  studyInstanceUid?: string;
}

async function entitledGroups(orthanc: Orthanc, tenant: TenantConfig, keys: RetrieveKeys): Promise<StudyGroup[]> {
  const candidates = await resourcesWithKeys(orthanc, tenant, keys);
  if (candidates.length === 0) return [];
  const units = await entitledUnits(orthanc, tenant, keys.level, candidates);
  const groups = new Map<string, StudyGroup>();
  const seen = new Set<string>();
  for (const unit of units) {
    for (const { patientId, studyInstanceUid, instances } of await instancesByStudy(orthanc, unit)) {
      const key = `${patientId}\n${studyInstanceUid}`;
      const group = groups.get(key) ?? { patientId, studyInstanceUid, instances: [] };
      groups.set(key, group);
      for (const id of instances) if (!seen.has(id) && seen.add(id)) group.instances.push(id);
    }
  }
  return [...groups.values()].filter((group) => group.instances.length > 0);
}

/** The resources whose instances the tenant is entitled to, among or within the candidates. */
async function entitledUnits(orthanc: Orthanc, tenant: TenantConfig, level: ResourceLevel, candidates: Found[]): Promise<Unit[]> {
  const entitlement = entitledLevel(tenant);
  const placed = (resource: Found, at: ResourceLevel): Unit => ({
    level: at,
    ID: resource.ID,
    patientId: resource.RequestedTags?.[Tags.PatientID],
    studyInstanceUid: at === 'Patient' ? undefined : resource.RequestedTags?.[Tags.StudyInstanceUID],
  });

  if (depth(entitlement) < depth(level)) {
    // Above the query level: keep the candidates whose ancestor is entitled.
    const kept = await Promise.all(
      candidates.map(async (resource) => satisfies(tenant, (await orthanc.getJson<Found>(`${URI_PREFIX[level]}${resource.ID}/${entitlement.toLowerCase()}`)).Labels ?? [])),
    );
    return candidates.filter((_, index) => kept[index]).map((resource) => placed(resource, level));
  }
  if (entitlement === level) return candidates.map((resource) => placed(resource, level));

  // Below the query level: the entitled resources within the candidates.
  const uids = candidates.map((resource) => resource.RequestedTags?.[UNIQUE_KEY[level]] ?? '');
  if (uids.every(isExactlyMatchable)) {
    const key = (patientId: string | undefined, uid: string | undefined) => `${patientId ?? ''}\n${uid ?? ''}`;
    const wanted = new Set(candidates.map((resource) => key(resource.RequestedTags?.[Tags.PatientID], resource.RequestedTags?.[UNIQUE_KEY[level]])));
    const entitled = await orthanc.find<Found>({
      Level: entitlement,
      Query: { [UNIQUE_KEY[level]]: uids.join('\\') },
      Labels: tenant.labels,
      LabelsConstraint: tenant.labelsConstraint,
      Expand: true,
      Short: true,
      RequestedTags: [...new Set([UNIQUE_KEY[level], ...placingTags(entitlement)])],
    });
    // The same UID may name resources of two patients: keep those under the candidates.
    return entitled
      .filter((resource) => wanted.has(key(resource.RequestedTags?.[Tags.PatientID], resource.RequestedTags?.[UNIQUE_KEY[level]])))
      .map((resource) => placed(resource, entitlement));
  }
  const within = await Promise.all(
    candidates.map((resource) => orthanc.getJson<Found[]>(`${URI_PREFIX[level]}${resource.ID}/${URI_PREFIX[entitlement].slice(1, -1)}`)),
  );
  return within
    .flat()
    .filter((resource) => satisfies(tenant, resource.Labels ?? []))
    .map((resource) => ({ level: entitlement, ID: resource.ID }));
}

interface StudyJson {
  ID: string;
  MainDicomTags?: Record<string, string>;
  PatientMainDicomTags?: Record<string, string>;
}

/** A unit's instances, by study. */
async function instancesByStudy(orthanc: Orthanc, unit: Unit): Promise<StudyGroup[]> {
  if (unit.level === 'Patient') {
    const studies = await orthanc.getJson<StudyJson[]>(`/patients/${unit.ID}/studies`);
    return Promise.all(studies.map(async (study) => ({ ...studyOf(study), instances: await instanceIdsOf(orthanc, 'Study', study.ID) })));
  }
  let place = { patientId: unit.patientId, studyInstanceUid: unit.studyInstanceUid };
  if (place.patientId === undefined || place.studyInstanceUid === undefined) {
    place = studyOf(await orthanc.getJson<StudyJson>(unit.level === 'Study' ? `/studies/${unit.ID}` : `${URI_PREFIX[unit.level]}${unit.ID}/study`));
  }
  return [{ patientId: place.patientId ?? '', studyInstanceUid: place.studyInstanceUid ?? '', instances: await instanceIdsOf(orthanc, unit.level, unit.ID) }];
}

function studyOf(study: StudyJson): { patientId: string; studyInstanceUid: string } {
  return { patientId: study.PatientMainDicomTags?.['PatientID'] ?? '', studyInstanceUid: study.MainDicomTags?.['StudyInstanceUID'] ?? '' };
}

async function instanceIdsOf(orthanc: Orthanc, level: ResourceLevel, id: string): Promise<string[]> {
  if (level === 'Instance') return [id];
  return (await orthanc.getJson<{ ID: string }[]>(`${URI_PREFIX[level]}${id}/instances`)).map((instance) => instance.ID);
}

export const MoveStatus = { NotAuthorized: 0x0124, DestinationUnknown: 0xa801 } as const;

/** What a C-GET or C-MOVE through the tenant sends, and for a C-MOVE, to whom and how. */
export async function planRetrieve(
  orthanc: Orthanc,
  tenant: TenantConfig,
  options: DicomOptions,
  request: Omit<Requests['retrieve'], 'tenant' | 'deadline'>,
): Promise<RetrievePlan> {
  const { modalities } = await readModalities(orthanc);

  if (request.request === 'Get') {
    const caller = firstModalityWithAet(modalities, request.remoteAet, options.strictAetComparison);
    const groups = await instancesToRetrieve(orthanc, tenant, request.query);
    return { ...sent(groups), allowTranscoding: options.transcodeDicomProtocol && caller?.allowTranscoding !== false };
  }

  const destination = firstModalityWithAet(modalities, request.destinationAet, options.strictAetComparison);
  if (destination === undefined) {
    return {
      refusal: MoveStatus.DestinationUnknown,
      reason: `the move destination "${request.destinationAet}" is not in DicomModalities`,
    };
  }
  if (tenant.allowedMoveDestinations !== undefined && !tenant.allowedMoveDestinations.includes(destination.name)) {
    return {
      refusal: MoveStatus.NotAuthorized,
      reason: `the move destination "${request.destinationAet}" (modality "${destination.name}") is not one of the AllowedMoveDestinations (${tenant.allowedMoveDestinations.join(', ')})`,
    };
  }
  const groups = await instancesToRetrieve(orthanc, tenant, request.query);
  const { instances, studies } = sent(groups);
  const allowTranscoding = options.transcodeDicomProtocol && destination.allowTranscoding;
  if (!options.synchronousCMove && instances.length > 0) {
    // As the core with SynchronousCMove false: Orthanc's job engine sends, the C-MOVE ends at once.
    await orthanc.postJson(`/modalities/${encodeURIComponent(destination.name)}/store`, {
      Resources: instances,
      Asynchronous: true,
      LocalAet: tenant.aet,
      MoveOriginatorAet: request.remoteAet,
      MoveOriginatorID: request.originatorMessageId,
    });
    return { instances, studies, allowTranscoding, submittedAsJob: true };
  }
  return { instances, studies, allowTranscoding, destination: destination.serialized, scuTimeoutSeconds: options.scuTimeoutSeconds };
}

/** The instances in study order, and how many of them each study has. */
function sent(groups: StudyGroup[]): { instances: string[]; studies: { patientId: string; studyInstanceUid: string; instances: number }[] } {
  return {
    instances: groups.flatMap((group) => group.instances),
    studies: groups.map(({ patientId, studyInstanceUid, instances }) => ({ patientId, studyInstanceUid, instances: instances.length })),
  };
}

export const retrieve: Handler<'retrieve'> = (args, { orthanc, tenants }) =>
  planRetrieve(orthanc.within(args.deadline), tenants.byIndex(args.tenant), tenants.dicom, args);
