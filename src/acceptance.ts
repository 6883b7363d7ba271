// Which storage SOP classes the tenant servers accept, as Orthanc's own C-STORE SCP
// (ServerContext::SetAcceptedSopClasses, Orthanc >= 1.12.6): "AcceptedSopClasses"
// (default: every storage class DCMTK knows) minus "RejectedSopClasses". An entry
// with "*" or "?" selects among the classes DCMTK knows; a plain UID is taken as is.
import { hasWildcard, wildcardToRegExp } from './wildcards.js';

export function acceptedSopClasses(orthancConfiguration: Record<string, unknown>, dcmtkStorageClasses: string[]): string[] {
  const acceptedEntries = stringList(orthancConfiguration['AcceptedSopClasses']);
  const rejectedEntries = stringList(orthancConfiguration['RejectedSopClasses']);

  const accepted: string[] = [];
  if (acceptedEntries.length === 0) {
    accepted.push(...dcmtkStorageClasses);
  } else {
    for (const entry of acceptedEntries) {
      if (hasWildcard(entry)) {
        const pattern = wildcardToRegExp(entry);
        accepted.push(...dcmtkStorageClasses.filter((uid) => pattern.test(uid)));
      } else {
        accepted.push(entry);
      }
    }
  }

  const rejected = rejectedEntries.map((entry) => (hasWildcard(entry) ? wildcardToRegExp(entry) : entry));
  const isRejected = (uid: string) =>
    rejected.some((entry) => (typeof entry === 'string' ? entry === uid : entry.test(uid)));
  return [...new Set(accepted)].filter((uid) => !isRejected(uid));
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}
