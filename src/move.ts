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

/** Orthanc identifiers of the instances a retrieve sends, each once, in a stable order. */
export async function instancesToRetrieve(orthanc: Orthanc, tenant: TenantConfig, elements: QueryElement[]): Promise<string[]> {
  const keys = retrieveKeys(elements);
  const instances = await instancesOfKeys(orthanc, tenant, keys);
  if (keys.tag !== Tags.AccessionNumber) return instances;
  // The AccessionNumber Orthanc keeps for a study comes from its first instance, maybe
  // another sender's: keep the instances whose own file has the requested one.
  const kept = await Promise.all(
    instances.map(async (id) => {
      const tags = await orthanc.getJson<Record<string, unknown>>(`/instances/${id}/tags?short`);
      const accession = tags[Tags.AccessionNumber];
      return keys.values.includes(typeof accession === 'string' ? accession : '');
    }),
  );
  return instances.filter((_, index) => kept[index]);
}

/** The resources at the query level whose key equals one of the values, that the tenant sees there. */
async function resourcesWithKeys(orthanc: Orthanc, tenant: TenantConfig, keys: RetrieveKeys): Promise<Found[]> {
  // Never a tag below the query level: Orthanc would read it from a file of each resource.
  const requested = [...new Set([keys.tag, UNIQUE_KEY[keys.level]])];
  const labelFilter = { Labels: tenant.labels, LabelsConstraint: tenant.labelsConstraint };
  const matchable = keys.values.filter(isExactlyMatchable);
  // Matched without case, which lets Orthanc page the answer, then kept only on exact equality.
  const found =
    matchable.length === 0
      ? []
      : await orthanc.find<Found>({ Level: keys.level, Query: { [keys.tag]: matchable.join('\\') }, ...labelFilter, Expand: true, Short: true, RequestedTags: requested });
  const literal = keys.values.filter((value) => !isExactlyMatchable(value));
  if (literal.length > 0) {
    const literalMatches = await resourcesWithLiteralKeys(orthanc, keys, literal, { ...labelFilter, Expand: true, Short: true, RequestedTags: requested });
    found.push(...literalMatches.filter((resource) => satisfies(tenant, resource.Labels ?? [])));
  }
  const seen = new Set<string>();
  return found.filter((resource) => keys.values.includes(resource.RequestedTags?.[keys.tag] ?? '') && !seen.has(resource.ID) && seen.add(resource.ID));
}

/**
 * Values that /tools/find would read as wildcards, lists or "anything": Orthanc's
 * /tools/lookup finds the resources whose identifier is exactly the value; an
 * AccessionNumber (not an identifier there) is matched as a pattern, then kept on equality.
 */
async function resourcesWithLiteralKeys(
  orthanc: Orthanc,
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
      const labels = await orthanc.getJson<string[]>(`${URI_PREFIX[keys.level]}${match.ID}/labels`);
      found.push({ ID: match.ID, Labels: labels, RequestedTags: { [keys.tag]: value } });
    }
  }
  return found;
}

async function instancesOfKeys(orthanc: Orthanc, tenant: TenantConfig, keys: RetrieveKeys): Promise<string[]> {
  const candidates = await resourcesWithKeys(orthanc, tenant, keys);
  if (candidates.length === 0) return [];
  const entitlement = entitledLevel(tenant);

  if (depth(entitlement) >= depth(keys.level)) {
    // The entitlement level is the query level or below it: the entitled resources within.
    const uids = candidates.map((resource) => resource.RequestedTags?.[UNIQUE_KEY[keys.level]] ?? '');
    if (uids.every(isExactlyMatchable)) {
      const entitled = await orthanc.find<string>({
        Level: entitlement,
        Query: { [UNIQUE_KEY[keys.level]]: uids.join('\\') },
        Labels: tenant.labels,
        LabelsConstraint: tenant.labelsConstraint,
      });
      return instancesOf(orthanc, entitlement, entitled);
    }
    const within = await Promise.all(
      candidates.map((resource) =>
        entitlement === keys.level
          ? [resource]
          : orthanc.getJson<Found[]>(`${URI_PREFIX[keys.level]}${resource.ID}/${URI_PREFIX[entitlement].slice(1, -1)}`),
      ),
    );
    const entitled = within.flat().filter((resource) => satisfies(tenant, resource.Labels ?? []));
    return instancesOf(orthanc, entitlement, entitled.map((resource) => resource.ID));
  }
  // Above the query level: keep the candidates whose ancestor is entitled.
  const kept = await Promise.all(
    candidates.map(async (resource) => {
      const ancestor = await orthanc.getJson<Found>(`${URI_PREFIX[keys.level]}${resource.ID}/${entitlement.toLowerCase()}`);
      return satisfies(tenant, ancestor.Labels ?? []);
    }),
  );
  return instancesOf(orthanc, keys.level, candidates.filter((_, index) => kept[index]).map((resource) => resource.ID));
}

async function instancesOf(orthanc: Orthanc, level: ResourceLevel, resourceIds: string[]): Promise<string[]> {
  const ids =
    level === 'Instance'
      ? resourceIds
      : (await Promise.all(resourceIds.map((id) => orthanc.getJson<{ ID: string }[]>(`${URI_PREFIX[level]}${id}/instances`)))).flatMap((instances) =>
          instances.map((instance) => instance.ID),
        );
  return [...new Set(ids)];
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
    const instances = await instancesToRetrieve(orthanc, tenant, request.query);
    return { instances, allowTranscoding: options.transcodeDicomProtocol && caller?.allowTranscoding !== false };
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
  const instances = await instancesToRetrieve(orthanc, tenant, request.query);
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
    return { instances, allowTranscoding, submittedAsJob: true };
  }
  return { instances, allowTranscoding, destination: destination.serialized, scuTimeoutSeconds: options.scuTimeoutSeconds };
}

export const retrieve: Handler<'retrieve'> = (args, { orthanc, tenants }) =>
  planRetrieve(orthanc.within(args.deadline), tenants.byIndex(args.tenant), tenants.dicom, args);
