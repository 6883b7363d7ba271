// DICOM wildcards, as Orthanc reads them: "*" any run of characters, "?" any one.

export function hasWildcard(text: string): boolean {
  return text.includes('*') || text.includes('?');
}

export function wildcardToRegExp(wildcard: string): RegExp {
  const escaped = wildcard.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 's');
}
