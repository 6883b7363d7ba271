// The DICOM and Orthanc vocabulary every decision shares: resource levels, the tags
// the plugin reads or answers, Orthanc's resource URIs and identifiers.

export type ResourceLevel = 'Patient' | 'Study' | 'Series' | 'Instance';

/** From the patient down to the instance. */
export const LEVELS: readonly ResourceLevel[] = ['Patient', 'Study', 'Series', 'Instance'];

export function depth(level: ResourceLevel): number {
  return LEVELS.indexOf(level);
}

/** Tags as "gggg,eeee", lower-case hexadecimal (the form /tools/find and the native shim use). */
export const Tags = {
  SpecificCharacterSet: '0008,0005',
  SOPClassUID: '0008,0016',
  SOPInstanceUID: '0008,0018',
  AccessionNumber: '0008,0050',
  QueryRetrieveLevel: '0008,0052',
  RetrieveAETitle: '0008,0054',
  Modality: '0008,0060',
  ModalitiesInStudy: '0008,0061',
  SOPClassesInStudy: '0008,0062',
  TimezoneOffsetFromUTC: '0008,0201',
  PatientID: '0010,0020',
  StudyInstanceUID: '0020,000d',
  SeriesInstanceUID: '0020,000e',
  NumberOfPatientRelatedStudies: '0020,1200',
  NumberOfPatientRelatedSeries: '0020,1202',
  NumberOfPatientRelatedInstances: '0020,1204',
  NumberOfStudyRelatedSeries: '0020,1206',
  NumberOfStudyRelatedInstances: '0020,1208',
  NumberOfSeriesRelatedInstances: '0020,1209',
} as const;

/** The unique key of each level. */
export const UNIQUE_KEY: Record<ResourceLevel, string> = {
  Patient: Tags.PatientID,
  Study: Tags.StudyInstanceUID,
  Series: Tags.SeriesInstanceUID,
  Instance: Tags.SOPInstanceUID,
};

/** The attributes Orthanc computes for C-FIND rather than reading them from files. */
export const COMPUTED_COUNTERS = [
  Tags.NumberOfPatientRelatedStudies,
  Tags.NumberOfPatientRelatedSeries,
  Tags.NumberOfPatientRelatedInstances,
  Tags.NumberOfStudyRelatedSeries,
  Tags.NumberOfStudyRelatedInstances,
  Tags.NumberOfSeriesRelatedInstances,
  Tags.SOPClassesInStudy,
  Tags.ModalitiesInStudy,
] as const;

/** The REST collection of each level: "/patients/", "/studies/", "/series/", "/instances/". */
export const URI_PREFIX: Record<ResourceLevel, string> = {
  Patient: '/patients/',
  Study: '/studies/',
  Series: '/series/',
  Instance: '/instances/',
};

export function resourceUri(level: ResourceLevel, orthancId: string): string {
  return `${URI_PREFIX[level]}${orthancId}`;
}

export function labelUri(level: ResourceLevel, orthancId: string, label: string): string {
  return `${URI_PREFIX[level]}${orthancId}/labels/${label}`;
}

/** Orthanc's identifiers of an instance and its parents. */
export type OrthancIds = Record<ResourceLevel, string>;

/**
 * Orthanc's identifier of a resource (DicomInstanceHasher): the SHA-1 of its DICOM
 * identifiers from the patient down, joined by "|", in five groups of eight digits.
 */
export function orthancId(...identifiers: string[]): string {
  // Loaded on first use: node:crypto costs Orthanc's start-up ~7 ms.
  const { createHash } = process.getBuiltinModule('node:crypto');
  return createHash('sha1').update(identifiers.join('|'), 'utf8').digest('hex').match(/.{8}/g)!.join('-');
}

/**
 * Whether a value read back from Orthanc can be a /tools/find constraint that matches
 * exactly that value: "*" and "?" are wildcards there, "\" separates a list, and an
 * empty value matches everything. Other values go through Orthanc identifiers.
 */
export function isExactlyMatchable(value: string): boolean {
  return value !== '' && !/[*?\\]/.test(value);
}
