// Which storage SOP classes the tenant servers accept, as Orthanc's own C-STORE SCP
// (ServerContext::SetAcceptedSopClasses, Orthanc >= 1.12.6): "AcceptedSopClasses"
// (default: every storage class DCMTK knows) minus the rejected ones. A wildcard entry
// ("*", "?") selects among the classes DCMTK knows; a plain UID is taken as is. The
// rejection list is "RejectSopClasses" up to Orthanc 1.12.7, "RejectedSopClasses"
// (falling back to the old name) from 1.12.8.
import type { Remembered } from './bridge.js';
import type { Handler } from './handler.js';
import type { Orthanc } from './orthanc.js';
import { hasWildcard, wildcardToRegExp } from './wildcards.js';

export function acceptedSopClasses(
  orthancConfiguration: Record<string, unknown>,
  dcmtkStorageClasses: string[],
  orthancVersion: string,
): string[] {
  const acceptedEntries = stringList(orthancConfiguration['AcceptedSopClasses']);
  const accepted = acceptedEntries.length === 0 ? [...dcmtkStorageClasses] : [];
  for (const entry of acceptedEntries) {
    accepted.push(...(hasWildcard(entry) ? matching(entry, dcmtkStorageClasses) : [entry]));
  }

  const rejected = new Set<string>();
  for (const entry of rejectionEntries(orthancConfiguration, orthancVersion)) {
    for (const uid of hasWildcard(entry) ? matching(entry, dcmtkStorageClasses) : [entry]) rejected.add(uid);
  }
  return [...new Set(accepted)].filter((uid) => !rejected.has(uid));
}

function rejectionEntries(configuration: Record<string, unknown>, orthancVersion: string): string[] {
  if (isAtLeast(orthancVersion, [1, 12, 8]) && Array.isArray(configuration['RejectedSopClasses'])) {
    return stringList(configuration['RejectedSopClasses']);
  }
  return stringList(configuration['RejectSopClasses']);
}

/** Orthanc's version string, "1.12.7" or "mainline" (newer than any release). */
export function isAtLeast(version: string, minimum: [number, number, number]): boolean {
  const parts = version.split('.').map((part) => Number.parseInt(part, 10));
  if (parts.length < 3 || parts.some((part) => Number.isNaN(part))) return true;
  for (let i = 0; i < 3; i++) {
    if (parts[i]! !== minimum[i]) return parts[i]! > minimum[i]!;
  }
  return true;
}

function matching(wildcard: string, uids: string[]): string[] {
  const pattern = wildcardToRegExp(wildcard);
  return uids.filter((uid) => pattern.test(uid));
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

// Orthanc's settings that apply to each association, read as they are now (they may
// change at run time through REST): the shim reuses an answer while they are unchanged.
async function orthancSetting<T>(orthanc: Orthanc, uri: string): Promise<Remembered<T>> {
  const content = await orthanc.getText(uri);
  return { answer: JSON.parse(content) as T, whileUnchanged: { uri, content } };
}

export const acceptedTransferSyntaxes: Handler<'acceptedTransferSyntaxes'> = (_args, { orthanc }) =>
  orthancSetting<string[]>(orthanc, '/tools/accepted-transfer-syntaxes');

// Used by the framework only when this server acts as a C-GET SCU toward a caller.
export const proposedStorageTransferSyntaxes: Handler<'proposedStorageTransferSyntaxes'> = (_args, { orthanc }) =>
  orthancSetting<string[]>(orthanc, '/tools/accepted-transfer-syntaxes');

export const unknownSopClassAccepted: Handler<'unknownSopClassAccepted'> = async (_args, { orthanc }) => {
  const setting = await orthancSetting<unknown>(orthanc, '/tools/unknown-sop-class-accepted');
  const accepted = setting.answer;
  return { ...setting, answer: accepted === true || accepted === 1 || accepted === '1' || accepted === 'true' };
};
