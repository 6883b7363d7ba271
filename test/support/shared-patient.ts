// Another sender's part deleted from a patient, study or series that a tenant shares with
// it (src/mixing.ts). Orthanc keeps a patient's, study's and series' attributes from their
// first instance, even once it is deleted: the plugin marks a patient of several senders
// "multitenant-mixed" (a label in Orthanc's database) and, once a deletion leaves it with
// one sender, rebuilds it from what remains and removes the label.
//
// The two senders' instances, and what each tenant must find once the first sender's part
// is deleted; used on one node (deletion.test.ts) and across the nodes of a cluster
// (cluster.test.ts).
import { join } from 'node:path';
import { orthancIds, SOP_CLASS, writeInstance, type SyntheticInstance } from './dataset.js';
import { valueOf, type Answer } from './find-data.js';
import type { RunningOrthanc } from './orthanc.js';

export const MIXED = 'multitenant-mixed';

export type QueryLevel = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';
export const QUERY_LEVELS: readonly QueryLevel[] = ['PATIENT', 'STUDY', 'SERIES', 'IMAGE'];

/** What each side's instances say: every value tells the side it came from. */
const VALUES = {
  first: { name: 'Alpha^Jürgen', charset: 'ISO_IR 100', description: 'ALPHA side', accession: 'ALPHA-1', modality: 'CT' as const },
  second: { name: 'Bravo^Δέλτα', charset: 'ISO_IR 126', description: 'BRAVO side', accession: 'BRAVO-1', modality: 'MR' as const },
};

/** The matching keys that single out the pair's resource at each level (with its PatientID). */
const UNIQUE: Record<QueryLevel, string[]> = {
  PATIENT: [],
  STUDY: ['StudyInstanceUID'],
  SERIES: ['StudyInstanceUID', 'SeriesInstanceUID'],
  IMAGE: ['StudyInstanceUID', 'SeriesInstanceUID', 'SOPInstanceUID'],
};

/** The values each level answers, and the field of the instance they come from. */
const RETURNED: Record<QueryLevel, [string, keyof SyntheticInstance][]> = {
  PATIENT: [['PatientName', 'patientName']],
  STUDY: [['PatientName', 'patientName'], ['StudyDescription', 'studyDescription'], ['AccessionNumber', 'accessionNumber'], ['ModalitiesInStudy', 'modality']],
  SERIES: [['PatientName', 'patientName'], ['StudyDescription', 'studyDescription'], ['AccessionNumber', 'accessionNumber'], ['Modality', 'modality']],
  IMAGE: [['PatientName', 'patientName'], ['StudyDescription', 'studyDescription'], ['AccessionNumber', 'accessionNumber'], ['Modality', 'modality']],
};

/** What the second sender shares with the first. */
export type Shares = 'patient' | 'study' | 'series';

/** The first sender's instance, to be deleted, and the second's, which stays. */
export interface SharingPair {
  first: SyntheticInstance;
  second: SyntheticInstance;
}

/** Writes the pair's files under `directory`: one patient, and the same study or series as `shares` says; UIDs under `root`. */
export async function writeSharingPair(directory: string, options: { root: string; patientId: string; shares: Shares }): Promise<SharingPair> {
  const { root, patientId, shares } = options;
  const write = (side: 'first' | 'second') => {
    const values = VALUES[side];
    const part = side === 'first' ? 1 : 2;
    return writeInstance(join(directory, side), {
      patientId,
      patientName: values.name,
      specificCharacterSet: values.charset,
      studyInstanceUid: shares === 'patient' ? `${root}.1.${part}` : `${root}.1`,
      seriesInstanceUid: shares === 'series' ? `${root}.2` : `${root}.2.${part}`,
      sopInstanceUid: `${root}.3.${part}`,
      modality: values.modality,
      sopClassUid: SOP_CLASS[values.modality],
      studyDescription: values.description,
      accessionNumber: values.accession,
    });
  };
  const [first, second] = await Promise.all([write('first'), write('second')]);
  return { first, second };
}

/** The REST URI that deletes the first sender's study, series or instance. */
export function deletionUri(first: SyntheticInstance, level: 'studies' | 'series' | 'instances'): string {
  const ids = orthancIds(first);
  return `/${level}/${{ studies: ids.study, series: ids.series, instances: ids.instance }[level]}`;
}

/** Whether the pair's patient carries the plugin's mark of several senders (it may be gone: not marked). */
export async function isMarkedMixed(orthanc: RunningOrthanc, pair: SharingPair): Promise<boolean> {
  const response = await orthanc.rest<string[]>('GET', `/patients/${orthancIds(pair.second).patient}/labels`);
  return response.status === 200 && response.body.includes(MIXED);
}

/** C-FIND (Study Root) through one tenant: the answers, text decoded; it must end with Success. */
export type TenantFind = (level: QueryLevel, keys: string[]) => Promise<Answer[]>;

const keysAt = (level: QueryLevel, pair: SharingPair) => [`PatientID=${pair.second.patientId}`, ...UNIQUE[level]];
const probe = (keyword: string, value: string) => (keyword === 'PatientName' ? `PatientName=${value.split('^')[0]}*` : `${keyword}=${value}`);

/**
 * What the second sender's tenant (named `tenant` in the findings) answers, at every level,
 * that is not the second sender's alone: its values only, its own values find its resource,
 * and the deleted instance's values (LEAK) find nothing. Empty when all is well.
 */
export async function findingsThroughRemaining(find: TenantFind, pair: SharingPair, tenant: string): Promise<string[]> {
  const { first, second } = pair;
  const findings: string[] = [];
  for (const level of QUERY_LEVELS) {
    const keys = keysAt(level, pair);
    const answers = await find(level, [...keys, ...RETURNED[level].map(([keyword]) => keyword)]);
    if (answers.length !== 1) findings.push(`${tenant} ${level}: ${answers.length} answers, expected 1`);
    for (const answer of answers) {
      for (const [keyword, field] of RETURNED[level]) {
        const got = valueOf(answer, keyword);
        if (got === String(second[field])) continue;
        findings.push(
          got === String(first[field])
            ? `LEAK ${tenant} ${level}: ${keyword} is the deleted instance's (${got}), ${tenant}'s is ${String(second[field])}`
            : `${tenant} ${level}: ${keyword} [${got}], expected ${String(second[field])}`,
        );
      }
    }
    for (const [keyword, field] of RETURNED[level]) {
      if (first[field] === second[field]) continue;
      const own = await find(level, [...keys, probe(keyword, String(second[field]))]);
      if (own.length !== 1) findings.push(`${tenant} ${level} ${probe(keyword, String(second[field]))} (its own value): ${own.length} answers, expected 1`);
      const deleted = await find(level, [...keys, probe(keyword, String(first[field]))]);
      if (deleted.length > 0) findings.push(`LEAK ${tenant} ${level} ${probe(keyword, String(first[field]))} (the deleted instance's value): finds its resource`);
    }
  }
  return findings;
}

/** What the first sender's tenant (named `tenant`), whose part is deleted, still finds of the patient at every level: nothing, when all is well. */
export async function findingsThroughDeleted(find: TenantFind, pair: SharingPair, tenant: string): Promise<string[]> {
  const findings: string[] = [];
  for (const level of QUERY_LEVELS) {
    const answers = await find(level, keysAt(level, pair));
    if (answers.length > 0) findings.push(`LEAK ${tenant} ${level}: ${answers.length} answers, ${tenant} holds nothing any more`);
  }
  return findings;
}
