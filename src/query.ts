// A C-FIND identifier as Orthanc's own C-FIND SCP reads it: the level, the keys that
// take part in matching, and the keys to answer.
import type { QueryElement } from './bridge.js';
import { parseResourceLevel } from './configuration.js';
import { Tags, type ResourceLevel } from './dicom.js';

export type { QueryElement } from './bridge.js';

/** Keys that are part of the request's framing, never matched. */
const NEVER_MATCHED = new Set<string>([Tags.QueryRetrieveLevel, Tags.SpecificCharacterSet, Tags.TimezoneOffsetFromUTC]);

export class FindRequestError extends Error {}

export interface ParsedQuery {
  level: ResourceLevel;
  levelValue: string; // echoed in every answer
  constraints: QueryElement[]; // elements with a non-empty value that take part in matching
  returnedTags: string[]; // every key of the identifier except QueryRetrieveLevel and SpecificCharacterSet
}

export function parseQuery(elements: QueryElement[]): ParsedQuery {
  const levelElement = elements.find((element) => element.tag === Tags.QueryRetrieveLevel);
  const levelValue = levelElement?.value?.trim() ?? '';
  if (levelValue === '') {
    throw new FindRequestError('C-FIND request without the tag 0008,0052 (QueryRetrieveLevel)');
  }
  const level = parseResourceLevel(levelValue);
  if (level === undefined) {
    throw new FindRequestError(`C-FIND request with an invalid QueryRetrieveLevel: "${levelValue}"`);
  }
  return {
    level,
    levelValue: levelElement?.value ?? levelValue,
    constraints: elements.filter(
      (element) =>
        element.value !== null && element.value !== '' && !NEVER_MATCHED.has(element.tag) && !isGroupLength(element.tag),
    ),
    returnedTags: elements
      .map((element) => element.tag)
      .filter((tag) => tag !== Tags.QueryRetrieveLevel && tag !== Tags.SpecificCharacterSet),
  };
}

// As the core, group lengths (gggg,0000) are never constraints.
function isGroupLength(tag: string): boolean {
  return tag.endsWith(',0000');
}
