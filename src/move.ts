// C-MOVE and C-GET through a tenant: which instances are sent. The resources are
// matched at the query level under the tenant's label constraint (as C-FIND), by their
// unique keys as Orthanc's own C-MOVE SCP reads them; then exactly the tenant's
// entitled instances within them are sent (see entitlement.ts).
import type { DicomOptions, ResourceLevel, TenantConfig } from './configuration.js';
import { isSameAet, parseResourceLevel } from './configuration.js';
import { depth, entitledLevel, LEVELS, UNIQUE_KEY } from './entitlement.js';
import { Tags, type QueryElement } from './find.js';
import type { Orthanc } from './orthanc.js';


const ACCESSION_NUMBER = '0008,0050';

export class RetrieveRequestError extends Error {}

export interface RetrieveKeys {
  level: ResourceLevel;
  tag: string; // the key the resources are looked up by
  values: string[]; // exact values (a backslash-separated list in the request)
}

/**
 * The level and key of a C-MOVE or C-GET identifier, as OrthancMoveRequestHandler reads
 * them: the unique key of the level (AccessionNumber first at STUDY level); without a
 * QueryRetrieveLevel, the deepest level whose key is present.
 */
export function retrieveKeys(elements: QueryElement[]): RetrieveKeys {
  const valueOf = (tag: string) => elements.find((element) => element.tag === tag)?.value ?? undefined;
  const keysAt = (level: ResourceLevel): RetrieveKeys | undefined => {
    const accession = level === 'Study' ? valueOf(ACCESSION_NUMBER) : undefined;
    const tag = accession !== undefined && accession !== '' ? ACCESSION_NUMBER : UNIQUE_KEY[level];
    const value = valueOf(tag);
    if (value === undefined) return undefined;
    return { level, tag, values: value.split('\\').filter((item) => item !== '') };
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
}

/** Orthanc identifiers of the instances a retrieve sends, each once, in a stable order. */
export async function instancesToRetrieve(orthanc: Orthanc, tenant: TenantConfig, elements: QueryElement[]): Promise<string[]> {
  const keys = retrieveKeys(elements);
  const instances = await instancesOfKeys(orthanc, tenant, keys);
  if (keys.tag !== ACCESSION_NUMBER) return instances;
  // The AccessionNumber Orthanc keeps for a study comes from its first instance, maybe
  // another sender's: keep the instances whose own file has the requested one.
  const kept = await Promise.all(
    instances.map(async (id) => {
      const tags = await orthanc.getJson<Record<string, unknown>>(`/instances/${id}/tags?short`);
      return keys.values.includes(typeof tags[ACCESSION_NUMBER] === 'string' ? (tags[ACCESSION_NUMBER] as string) : '');
    }),
  );
  return instances.filter((_, index) => kept[index]);
}

async function instancesOfKeys(orthanc: Orthanc, tenant: TenantConfig, keys: RetrieveKeys): Promise<string[]> {
  if (keys.values.length === 0) return [];
  const entitlement = entitledLevel(tenant);
  const labelFilter = { Labels: tenant.labels, LabelsConstraint: tenant.labelsConstraint };

  // The resources named by the request that the tenant sees at the query level. Matched
  // without case, which lets Orthanc page the answer, then kept only on exact equality.
  const candidates = (
    await orthanc.find<Found>({
      Level: keys.level,
      Query: { [keys.tag]: keys.values.join('\\') },
      ...labelFilter,
      Expand: true,
      Short: true,
      RequestedTags: [keys.tag, UNIQUE_KEY[keys.level], UNIQUE_KEY[entitlement]],
    })
  ).filter((found) => keys.values.includes(found.RequestedTags?.[keys.tag] ?? '')); // no wildcard meaning
  if (candidates.length === 0) return [];

  if (depth(entitlement) >= depth(keys.level)) {
    // The entitlement level is the query level or below it: find the entitled resources within.
    const uids = candidates.map((found) => found.RequestedTags?.[UNIQUE_KEY[keys.level]] ?? '');
    const entitled = await orthanc.find<string>({
      Level: entitlement,
      Query: { [UNIQUE_KEY[keys.level]]: uids.join('\\') },
      ...labelFilter,
    });
    return instancesOf(orthanc, entitlement, entitled);
  } else {
    // Above the query level: keep the candidates whose ancestor is entitled.
    const ancestorUids = [...new Set(candidates.map((found) => found.RequestedTags?.[UNIQUE_KEY[entitlement]] ?? ''))];
    const entitledAncestors = await orthanc.find<Found>({
      Level: entitlement,
      Query: { [UNIQUE_KEY[entitlement]]: ancestorUids.join('\\') },
      ...labelFilter,
      Expand: true,
      Short: true,
      RequestedTags: [UNIQUE_KEY[entitlement]],
    });
    const allowed = new Set(entitledAncestors.map((found) => found.RequestedTags?.[UNIQUE_KEY[entitlement]]));
    const entitled = candidates.filter((found) => allowed.has(found.RequestedTags?.[UNIQUE_KEY[entitlement]]));
    return instancesOf(orthanc, keys.level, entitled.map((found) => found.ID));
  }
}

async function instancesOf(orthanc: Orthanc, level: ResourceLevel, resourceIds: string[]): Promise<string[]> {
  const ids =
    level === 'Instance'
      ? resourceIds
      : (
          await Promise.all(resourceIds.map((id) => orthanc.getJson<{ ID: string }[]>(`/${pluralOf(level)}/${id}/instances`)))
        ).flatMap((instances) => instances.map((instance) => instance.ID));
  return [...new Set(ids)];
}

function pluralOf(level: Exclude<ResourceLevel, 'Instance'>): string {
  return { Patient: 'patients', Study: 'studies', Series: 'series' }[level];
}

/** A modality as GET /modalities?expand gives it. */
interface ExpandedModality {
  AET: string;
  AllowTranscoding?: boolean;
}

/** The first modality with this AET, in the order of Orthanc's symbolic names (as the core). */
export function modalityWithAet(
  modalities: Record<string, ExpandedModality>,
  aet: string,
  strictAetComparison: boolean,
): { name: string; modality: ExpandedModality } | undefined {
  const name = Object.keys(modalities)
    .sort()
    .find((candidate) => isSameAet(strictAetComparison, modalities[candidate]!.AET, aet));
  return name === undefined ? undefined : { name, modality: modalities[name]! };
}

export const MoveStatus = { NotAuthorized: 0x0124, DestinationUnknown: 0xa801 } as const;

export interface RetrieveRequest {
  request: 'Get' | 'Move';
  query: QueryElement[];
  callerAet: string;
  destinationAet: string;
  originatorMessageId: number;
}

export type RetrievePlan =
  | {
      instances: string[];
      allowTranscoding: boolean;
      destination?: string;
      scuTimeoutSeconds?: number;
      submittedAsJob?: boolean;
    }
  | { refusal: number; reason: string };

/** What a C-GET or C-MOVE through the tenant sends, and for a C-MOVE, to whom and how. */
export async function planRetrieve(
  orthanc: Orthanc,
  tenant: TenantConfig,
  options: DicomOptions,
  request: RetrieveRequest,
): Promise<RetrievePlan> {
  const modalities = await orthanc.getJson<Record<string, ExpandedModality>>('/modalities?expand');

  if (request.request === 'Get') {
    const caller = modalityWithAet(modalities, request.callerAet, options.strictAetComparison);
    const instances = await instancesToRetrieve(orthanc, tenant, request.query);
    return { instances, allowTranscoding: options.transcodeDicomProtocol && caller?.modality.AllowTranscoding !== false };
  }

  const destination = modalityWithAet(modalities, request.destinationAet, options.strictAetComparison);
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
  const allowTranscoding = options.transcodeDicomProtocol && destination.modality.AllowTranscoding !== false;
  if (!options.synchronousCMove && instances.length > 0) {
    // As the core with SynchronousCMove false: Orthanc's job engine sends, the C-MOVE ends at once.
    await orthanc.postJson(`/modalities/${encodeURIComponent(destination.name)}/store`, {
      Resources: instances,
      Asynchronous: true,
      LocalAet: tenant.aet,
      MoveOriginatorAet: request.callerAet,
      MoveOriginatorID: request.originatorMessageId,
    });
    return { instances, allowTranscoding, submittedAsJob: true };
  }
  return {
    instances,
    allowTranscoding,
    destination: JSON.stringify(destination.modality),
    scuTimeoutSeconds: options.scuTimeoutSeconds,
  };
}
