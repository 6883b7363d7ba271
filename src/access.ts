// Who may talk to a tenant DICOM server: the same rules as Orthanc core's
// OrthancApplicationEntityFilter (OrthancServer/Sources/main.cpp), applied to the
// modalities that Orthanc's REST API lists.
import type { Answers, CallerFields, DicomRequestType, Remembered } from './bridge.js';
import { isSameAet, type DicomOptions } from './configuration.js';
import type { Handler } from './handler.js';
import { firstModalityWithAet, readModalities, type RemoteModality } from './modalities.js';
import { tenantName } from './configuration.js';

export type { DicomRequestType } from './bridge.js';

/** The options of Orthanc's configuration that decide who may talk to a DICOM server. */
export type AccessOptions = Pick<
  DicomOptions,
  | 'strictAetComparison'
  | 'checkModalityHost'
  | 'alwaysAllowEcho'
  | 'alwaysAllowFind'
  | 'alwaysAllowFindWorklist'
  | 'alwaysAllowGet'
  | 'alwaysAllowMove'
  | 'alwaysAllowStore'
>;

export interface AccessDecision {
  allowed: boolean;
  /** A log line when refused. */
  reason?: string;
}

export interface Caller {
  aet: string;
  ip: string;
  calledAet: string;
}

// As Orthanc's EnumerationToString(DicomRequestType), for log lines.
const REQUEST_LABELS: Record<DicomRequestType, string> = {
  Echo: 'Echo',
  Find: 'Find',
  FindWorklist: 'FindWorklist',
  Get: 'Get',
  Move: 'Move',
  Store: 'Store',
  NAction: 'N-ACTION',
  NEventReport: 'N-EVENT-REPORT',
};

const ALWAYS_ALLOW_OPTIONS: Partial<Record<DicomRequestType, keyof AccessOptions>> = {
  Echo: 'alwaysAllowEcho',
  Find: 'alwaysAllowFind',
  FindWorklist: 'alwaysAllowFindWorklist',
  Get: 'alwaysAllowGet',
  Move: 'alwaysAllowMove',
  Store: 'alwaysAllowStore',
};

function modalitiesWithAet(options: AccessOptions, modalities: RemoteModality[], aet: string): RemoteModality[] {
  return modalities.filter((modality) => isSameAet(options.strictAetComparison, aet, modality.aet));
}

function isAnyRequestAlwaysAllowed(options: AccessOptions): boolean {
  return (
    options.alwaysAllowEcho ||
    options.alwaysAllowFind ||
    options.alwaysAllowFindWorklist ||
    options.alwaysAllowGet ||
    options.alwaysAllowMove ||
    options.alwaysAllowStore
  );
}

const ALLOWED: AccessDecision = { allowed: true };

function refused(reason: string): AccessDecision {
  return { allowed: false, reason };
}

/** As OrthancApplicationEntityFilter::IsAllowedConnection (and OrthancConfiguration::IsKnownAETitle). */
export function decideConnection(options: AccessOptions, modalities: RemoteModality[], caller: Caller): AccessDecision {
  if (isAnyRequestAlwaysAllowed(options)) {
    return ALLOWED;
  }
  // The core only looks at the first modality with this AET.
  const modality = firstModalityWithAet(modalities, caller.aet, options.strictAetComparison);
  if (modality === undefined) {
    return refused(
      `Modality "${caller.aet}" on IP ${caller.ip} is not listed in the "DicomModalities" configuration option ` +
        `(connection to AET ${caller.calledAet} refused)`,
    );
  }
  if (!options.checkModalityHost || caller.ip === modality.host) {
    return ALLOWED;
  }
  return refused(
    `Forbidding access from AET "${caller.aet}" to AET ${caller.calledAet} given its hostname (${caller.ip}) ` +
      `does not match the "DicomModalities" configuration option (${modality.host} was expected)`,
  );
}

/** As OrthancApplicationEntityFilter::IsAllowedRequest. */
export function decideRequest(
  options: AccessOptions,
  modalities: RemoteModality[],
  caller: Caller,
  type: DicomRequestType,
): AccessDecision {
  const alwaysAllowOption = ALWAYS_ALLOW_OPTIONS[type];
  if (alwaysAllowOption !== undefined && options[alwaysAllowOption]) {
    return ALLOWED;
  }

  const rejected = `DICOM authorization rejected for AET ${caller.aet} on IP ${caller.ip} calling AET ${caller.calledAet}`;
  const notAllowed = `The DICOM command ${REQUEST_LABELS[type]} is not allowed for this modality according to configuration option "DicomModalities"`;
  const candidates = modalitiesWithAet(options, modalities, caller.aet);
  const [single] = candidates;

  if (single === undefined) {
    return refused(`${rejected}: This AET is not listed in configuration option "DicomModalities"`);
  }

  if (candidates.length === 1) {
    if (options.checkModalityHost && caller.ip !== single.host) {
      return refused(
        `${rejected}: Its IP address should be ${single.host} according to configuration option "DicomModalities"`,
      );
    }
    return single.allowed[type] ? ALLOWED : refused(`${rejected}: ${notAllowed}`);
  }

  // Several modalities share this AET: a modality with this IP that allows the request is
  // enough (with the host check), else the request must be allowed for all of them,
  // whatever the IP (sic, as in the core).
  if (options.checkModalityHost && candidates.some((m) => m.allowed[type] && m.host === caller.ip)) {
    return ALLOWED;
  }
  if (candidates.every((m) => m.allowed[type])) {
    return ALLOWED;
  }
  const which = options.checkModalityHost ? 'allowed for none of them matching the IP' : 'not allowed for all of them';
  return refused(
    `${rejected}: ${notAllowed}; ${candidates.length} modalities found with this AET in configuration option ` +
      `"DicomModalities", but the operation is ${which}`,
  );
}

/**
 * A tenant's own access list ("AllowedCallers": modality names), checked before the
 * core's rules and whatever DicomAlwaysAllow* say. The host is checked as
 * DicomCheckModalityHost would check it.
 */
export function decideAllowedCaller(
  options: Pick<AccessOptions, 'strictAetComparison' | 'checkModalityHost'>,
  modalities: RemoteModality[],
  caller: Caller,
  allowedCallers: readonly string[] | undefined,
): AccessDecision {
  if (allowedCallers === undefined) return ALLOWED;
  const listed = modalities.filter(
    (modality) => allowedCallers.includes(modality.name) && isSameAet(options.strictAetComparison, modality.aet, caller.aet),
  );
  if (listed.length === 0) {
    return refused(
      `AET "${caller.aet}" on IP ${caller.ip} is not one of the AllowedCallers of AET ${caller.calledAet} (${allowedCallers.join(', ')})`,
    );
  }
  if (options.checkModalityHost && !listed.some((modality) => modality.host === caller.ip)) {
    return refused(
      `AET "${caller.aet}" on IP ${caller.ip} is one of the AllowedCallers of AET ${caller.calledAet}, but from another host ` +
        `(${listed.map((modality) => modality.host).join(', ')} expected, DicomCheckModalityHost is true)`,
    );
  }
  return ALLOWED;
}

function callerOf(args: CallerFields): Caller {
  return { aet: args.remoteAet, ip: args.remoteIp, calledAet: args.calledAet };
}

/**
 * Asked for every association, then before every DICOM command. A permission depends
 * only on the configuration and DicomModalities: the shim may reuse it while those are
 * unchanged. A refusal is asked again every time, and logged.
 */
export const allowConnection: Handler<'allowConnection'> = async (args, { orthanc, tenants }) => {
  const tenant = tenants.byIndex(args.tenant);
  const { modalities, whileUnchanged } = await readModalities(orthanc);
  const listed = decideAllowedCaller(tenants.dicom, modalities, callerOf(args), tenant.allowedCallers);
  const decision = listed.allowed ? decideConnection(tenants.dicom, modalities, callerOf(args)) : listed;
  return answerPermission(decision, whileUnchanged, (reason) => orthanc.warning(`${tenantName(tenant)}: ${reason}`));
};

export const allowRequest: Handler<'allowRequest'> = async (args, { orthanc, tenants }) => {
  const tenant = tenants.byIndex(args.tenant);
  const { modalities, whileUnchanged } = await readModalities(orthanc);
  const listed = decideAllowedCaller(tenants.dicom, modalities, callerOf(args), tenant.allowedCallers);
  const decision = listed.allowed ? decideRequest(tenants.dicom, modalities, callerOf(args), args.request) : listed;
  return answerPermission(decision, whileUnchanged, (reason) => orthanc.warning(`${tenantName(tenant)}: ${reason}`));
};

function answerPermission(
  decision: AccessDecision,
  whileUnchanged: Remembered<true>['whileUnchanged'],
  logRefusal: (reason: string) => void,
): Answers['allowConnection'] {
  if (!decision.allowed) {
    logRefusal(decision.reason ?? 'refused');
    return false;
  }
  return { answer: true, whileUnchanged };
}
