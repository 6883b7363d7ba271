// C-FIND through a tenant: the same matching and answers as Orthanc's own C-FIND SCP
// (OrthancFindRequestHandler), restricted to the resources whose labels satisfy the
// tenant's constraint at the query level. Matching runs in Orthanc (/tools/find).
import type { AuditedResources } from './activity.js';
import type { FindAnswer } from './bridge.js';
import type { DicomOptions, TenantConfig } from './configuration.js';
import { Tags } from './dicom.js';
import { restrictToEntitled, tagsForEntitlement, type FoundResource } from './find-entitled.js';
import type { Handler } from './handler.js';
import type { Mixing } from './mixing.js';
import { CappedFindError, type FindRequest, type Orthanc } from './orthanc.js';
import { parseQuery, type ParsedQuery, type QueryElement } from './query.js';

/**
 * /tools/find has one CaseSensitive flag for every constraint, while C-FIND matches
 * PN case-insensitively (unless CaseSensitivePN) and everything else case-sensitively.
 * When both kinds meet, Orthanc matches case-insensitively and the other constraints
 * are checked again here, exactly.
 */
export function needsExactRecheck(query: ParsedQuery, caseSensitivePN: boolean): boolean {
  return !caseSensitivePN && query.constraints.some((element) => element.vr === 'PN' && hasLetters(element.value));
}

/**
 * Whether case matters to any constraint. Orthanc can page (beyond LimitFindResults) only
 * a case-insensitive /tools/find, so case sensitivity is asked only when it matters.
 */
export function needsCaseSensitivity(query: ParsedQuery, caseSensitivePN: boolean): boolean {
  return query.constraints.some((element) => hasLetters(element.value) && (element.vr !== 'PN' || caseSensitivePN));
}

export function recheckedConstraints(query: ParsedQuery): QueryElement[] {
  return query.constraints.filter((element) => element.vr !== 'PN' && hasLetters(element.value));
}

function hasLetters(value: string | null): boolean {
  return value !== null && value.toLowerCase() !== value.toUpperCase();
}

export interface FindBody extends FindRequest {
  Labels: string[];
  Expand: true;
  Short: true;
  CaseSensitive: boolean;
  RequestedTags: string[];
}

/** `audited`: an audit trail records each answer's patient and study (auditedTags). */
export function findBody(query: ParsedQuery, tenant: TenantConfig, options: DicomOptions, audited = false): FindBody {
  const recheck = needsExactRecheck(query, options.caseSensitivePN);
  return {
    Level: query.level,
    Query: Object.fromEntries(query.constraints.map((element) => [element.tag, element.value ?? ''])),
    Labels: tenant.labels,
    LabelsConstraint: tenant.labelsConstraint,
    Expand: true,
    Short: true,
    CaseSensitive: !recheck && needsCaseSensitivity(query, options.caseSensitivePN),
    RequestedTags: [...new Set([...query.returnedTags, ...tagsForEntitlement(query.level, tenant), ...(audited ? auditedTags(query.level) : [])])],
  };
}

/** What the audit trail records of each answer: its patient, and its study below the PATIENT level. */
function auditedTags(level: ParsedQuery['level']): string[] {
  return level === 'Patient' ? [Tags.PatientID] : [Tags.PatientID, Tags.StudyInstanceUID];
}

export function answerOf(resource: Pick<FoundResource, 'RequestedTags'>, query: ParsedQuery, retrieveAet: string): FindAnswer {
  const answer: FindAnswer = { [Tags.RetrieveAETitle]: retrieveAet, [Tags.QueryRetrieveLevel]: query.levelValue };
  for (const tag of query.returnedTags) {
    const value = resource.RequestedTags?.[tag];
    answer[tag] = typeof value === 'string' ? value : '';
  }
  return answer;
}

export async function findThroughTenant(
  orthanc: Orthanc,
  mixing: Mixing,
  tenant: TenantConfig,
  options: DicomOptions,
  elements: QueryElement[],
  audited = false,
): Promise<{ answers: FindAnswer[]; complete: boolean; audited: AuditedResources }> {
  const query = parseQuery(elements);
  const body = findBody(query, tenant, options, audited);
  let resources: FoundResource[];
  let complete = true;
  try {
    resources = await orthanc.find<FoundResource>(body);
  } catch (error) {
    if (!(error instanceof CappedFindError)) throw error;
    // Orthanc cannot page this query: answer what it gave, as matching cut short (0xFE00).
    resources = error.firstPage as FoundResource[];
    complete = false;
  }

  const rechecked = body.CaseSensitive ? [] : recheckedConstraints(query);
  if (rechecked.length > 0) {
    // Orthanc matched everything case-insensitively: keep what it also matches exactly
    // on the constraints that are not PN.
    const exact = await orthanc.find<FoundResource>({
      ...body,
      Query: Object.fromEntries(rechecked.map((element) => [element.tag, element.value ?? ''])),
      CaseSensitive: true,
    });
    const matched = new Set(exact.map((resource) => resource.ID));
    resources = resources.filter((resource) => matched.has(resource.ID));
  }

  const patientIds = new Set<string>();
  const studyInstanceUids = new Set<string>();
  const answers = await restrictToEntitled(orthanc, mixing, tenant, options, query, resources, (values, resource) => {
    if (audited) {
      const { [Tags.PatientID]: patientId, [Tags.StudyInstanceUID]: studyInstanceUid } = resource.RequestedTags ?? {};
      if (typeof patientId === 'string') patientIds.add(patientId);
      if (typeof studyInstanceUid === 'string' && query.level !== 'Patient') studyInstanceUids.add(studyInstanceUid);
    }
    return answerOf({ RequestedTags: values }, query, tenant.aet);
  });
  // Orthanc 1.12.7's own C-FIND logs that LimitFindResults is reached, and answers
  // every match anyway, with Success: so does this one, whenever Orthanc can page.
  return { answers, complete, audited: { patientIds: [...patientIds], studyInstanceUids: [...studyInstanceUids] } };
}

// Without an audit trail, the answers' patients and studies are not collected; with one,
// they stay on this side under a key the shim passes back in the operation's report.
export const find: Handler<'find'> = async (args, { orthanc, tenants, mixing, activity }) => {
  const audited = activity.audit !== undefined;
  const found = await findThroughTenant(orthanc.within(args.deadline), mixing, tenants.byIndex(args.tenant), tenants.dicom, args.query, audited);
  return audited ? { answers: found.answers, complete: found.complete, auditedKey: activity.keepAudited(found.audited) } : { answers: found.answers, complete: found.complete };
};
