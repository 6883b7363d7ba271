// Deterministic synthetic DICOM data: patients, studies, series and instances whose
// UIDs and IDs are unique per test (through `prefix`), with patient names in several
// character sets, varied modalities, SOP classes, dates, times, accession numbers and
// descriptions, and optional 16-bit pixel data.
//
// Files are written by DCMTK's dump2dcm from a dump whose bytes are exactly those of the
// declared SpecificCharacterSet (the dump is built as a Buffer, never as a JS string, so
// Latin-1, ISO-8859-5 and ISO-8859-7 bytes reach the file unchanged). The same spec
// gives byte-identical files.
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { runTool } from './dcmtk.js';

export interface SyntheticInstance {
  /** The .dcm file written. */
  path: string;
  patientId: string;
  /** As UTF-8 text (decoded), i.e. what Orthanc should report. */
  patientName: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  modality: string;
  studyDate: string;
  studyTime: string;
  accessionNumber: string;
  studyDescription: string;
  seriesNumber: string;
  instanceNumber: string;
  /** e.g. 'ISO_IR 100', 'ISO_IR 192', 'ISO_IR 144', 'ISO_IR 126', '' (default repertoire: no tag written). */
  specificCharacterSet: string;
  /** The transfer syntax of the file: Explicit or Implicit VR Little Endian. */
  transferSyntaxUid: string;
}

export type TransferSyntaxChoice = 'explicit' | 'implicit';

export interface PixelSpec {
  rows: number;
  columns: number;
}

export interface DatasetSpec {
  /**
   * Makes UIDs and IDs unique per test. A dotted numeric UID root with at least three
   * components (e.g. '1.2.826.0.1.3680043.10.1234.7') is the UID root itself; digits
   * (e.g. '42') are appended to DEFAULT_UID_ROOT; anything else (e.g. 'store-test') is
   * hashed into a numeric component appended to DEFAULT_UID_ROOT.
   */
  prefix: string;
  patients: number;
  studiesPerPatient: number;
  seriesPerStudy: number;
  instancesPerSeries: number;
  /** Optional 16-bit MONOCHROME2 pixel data (256x256 is about 130 KB); none by default. */
  pixels?: PixelSpec;
  /** 'explicit' (default), 'implicit', or 'mixed' (alternating, instance by instance). */
  transferSyntax?: TransferSyntaxChoice | 'mixed';
}

export interface InstanceOptions {
  pixels?: PixelSpec;
  transferSyntax?: TransferSyntaxChoice;
  /** The file name in `directory`; `<SOPInstanceUID>.dcm` by default. */
  fileName?: string;
}

export const DEFAULT_UID_ROOT = '1.2.826.0.1.3680043.10.1234';

export const TRANSFER_SYNTAX = {
  explicit: '1.2.840.10008.1.2.1',
  implicit: '1.2.840.10008.1.2',
} as const;

export const SOP_CLASS = {
  CR: '1.2.840.10008.5.1.4.1.1.1', // Computed Radiography Image Storage
  CT: '1.2.840.10008.5.1.4.1.1.2', // CT Image Storage
  MR: '1.2.840.10008.5.1.4.1.1.4', // MR Image Storage
  US: '1.2.840.10008.5.1.4.1.1.6.1', // Ultrasound Image Storage
  OT: '1.2.840.10008.5.1.4.1.1.7', // Secondary Capture Image Storage
  DX: '1.2.840.10008.5.1.4.1.1.1.1', // Digital X-Ray Image Storage - For Presentation
  NM: '1.2.840.10008.5.1.4.1.1.20', // Nuclear Medicine Image Storage
} as const;

const MODALITY_CYCLE: (keyof typeof SOP_CLASS)[] = ['CT', 'MR', 'US', 'CR', 'OT', 'DX', 'NM'];

/** The character sets cycled over patients, and the names used for each (as Unicode text). */
export const PATIENT_NAMES: Readonly<Record<string, readonly string[]>> = {
  'ISO_IR 100': ['Müller^Jürgen', 'Ñúñez^José', 'Øster^Åse', 'Dubois^Françoise', 'Weiß^Renée'],
  'ISO_IR 192': ['Ωμέγα^Δέλτα', 'Иванов^Иван', '山田^太郎', 'Nguyễn^Văn Ánh', 'Łukasz^Żółć'],
  'ISO_IR 144': ['Петров^Пётр', 'Смирнова^Ольга', 'Кузнецов^Сергей', 'Попова^Юлия', 'Шевченко^Тарас'],
  'ISO_IR 126': ['Παπαδόπουλος^Γιώργος', 'Αλεξίου^Ελένη', 'Νικολάου^Σωτήρης', 'Καραγιάννη^Μαρία', 'Οικονόμου^Άννα'],
  '': ['Doe^John', 'Smith^Jane', 'Brown^Robert', 'Taylor^Emily', 'Wilson^James'],
};

export const CHARACTER_SETS = Object.keys(PATIENT_NAMES);

const STUDY_DESCRIPTIONS = [
  'CHEST PA AND LATERAL',
  'CT HEAD WITHOUT CONTRAST',
  'MRI KNEE LEFT',
  'ABDOMEN ULTRASOUND',
  'Follow-up, 6 months',
  'Screening (annual)',
  'PELVIS & HIPS',
];

// ---------------------------------------------------------------------------------------
// Character sets: bytes of a text in a DICOM SpecificCharacterSet.

/** ISO-8859-5 (ISO_IR 144): Cyrillic letters are U+0360 above their byte. */
function iso8859_5(codePoint: number): number | undefined {
  const inRange =
    (codePoint >= 0x0401 && codePoint <= 0x040c) ||
    (codePoint >= 0x040e && codePoint <= 0x044f) ||
    (codePoint >= 0x0451 && codePoint <= 0x045c) ||
    codePoint === 0x045e ||
    codePoint === 0x045f;
  return inRange ? codePoint - 0x0360 : undefined;
}

/** ISO-8859-7 (ISO_IR 126): Greek letters are U+02D0 above their byte. */
function iso8859_7(codePoint: number): number | undefined {
  const inRange =
    (codePoint >= 0x0384 && codePoint <= 0x0386) ||
    (codePoint >= 0x0388 && codePoint <= 0x038a) ||
    codePoint === 0x038c ||
    (codePoint >= 0x038e && codePoint <= 0x03a1) ||
    (codePoint >= 0x03a3 && codePoint <= 0x03ce);
  return inRange ? codePoint - 0x02d0 : undefined;
}

function singleByte(text: string, characterSet: string, high: (codePoint: number) => number | undefined): Buffer {
  const bytes: number[] = [];
  for (const character of text) {
    const codePoint = character.codePointAt(0)!;
    const byte = codePoint < 0x80 ? codePoint : high(codePoint);
    if (byte === undefined) {
      throw new Error(`"${character}" (U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}) of ${JSON.stringify(text)} has no byte in ${characterSet || 'the default repertoire'}`);
    }
    bytes.push(byte);
  }
  return Buffer.from(bytes);
}

/** The bytes of `text` in a SpecificCharacterSet ('' is the default repertoire, ASCII). */
export function encodeText(text: string, specificCharacterSet: string): Buffer {
  switch (specificCharacterSet) {
    case '':
    case 'ISO_IR 6':
      return singleByte(text, specificCharacterSet, () => undefined);
    case 'ISO_IR 100':
      return singleByte(text, specificCharacterSet, (codePoint) => (codePoint <= 0xff ? codePoint : undefined));
    case 'ISO_IR 192':
      return Buffer.from(text, 'utf8');
    case 'ISO_IR 144':
      return singleByte(text, specificCharacterSet, iso8859_5);
    case 'ISO_IR 126':
      return singleByte(text, specificCharacterSet, iso8859_7);
    default:
      throw new Error(`No encoder for the SpecificCharacterSet ${JSON.stringify(specificCharacterSet)}`);
  }
}

// ---------------------------------------------------------------------------------------
// Identifiers.

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The UID root of a prefix (see DatasetSpec.prefix). */
export function uidRoot(prefix: string): string {
  if (/^[1-9]\d*(\.(0|[1-9]\d*)){2,}$/.test(prefix)) return prefix;
  if (/^\d+$/.test(prefix)) return `${DEFAULT_UID_ROOT}.${BigInt(prefix).toString()}`;
  return `${DEFAULT_UID_ROOT}.${fnv1a(prefix)}`;
}

/** A short tag of a prefix for PatientID and AccessionNumber (at most 9 characters). */
function idTag(prefix: string): string {
  return /^[A-Za-z0-9]{1,8}$/.test(prefix) ? prefix : `h${fnv1a(prefix).toString(36)}`;
}

function checkUid(uid: string): string {
  if (uid.length > 64 || !/^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/.test(uid)) throw new Error(`Invalid UID ${uid}`);
  return uid;
}

/** Orthanc's identifier of a resource: SHA-1 of the DICOM identifiers, in five groups of 8. */
function orthancHash(text: string): string {
  return createHash('sha1').update(text, 'utf8').digest('hex').match(/.{8}/g)!.join('-');
}

/** The Orthanc identifiers of the patient, study, series and instance of an instance. */
export function orthancIds(instance: Pick<SyntheticInstance, 'patientId' | 'studyInstanceUid' | 'seriesInstanceUid' | 'sopInstanceUid'>) {
  const { patientId, studyInstanceUid, seriesInstanceUid, sopInstanceUid } = instance;
  return {
    patient: orthancHash(patientId),
    study: orthancHash(`${patientId}|${studyInstanceUid}`),
    series: orthancHash(`${patientId}|${studyInstanceUid}|${seriesInstanceUid}`),
    instance: orthancHash(`${patientId}|${studyInstanceUid}|${seriesInstanceUid}|${sopInstanceUid}`),
  };
}

// ---------------------------------------------------------------------------------------
// Files.

function element(tag: string, vr: string, value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  if (bytes.includes(0x0a) || bytes.includes(0x0d) || bytes.includes(0x5d) /* ] */) {
    throw new Error(`The value of ${tag} cannot be written in a dump: ${bytes.toString('latin1')}`);
  }
  return Buffer.concat([Buffer.from(`(${tag}) ${vr} [`, 'latin1'), bytes, Buffer.from(']\n', 'latin1')]);
}

/** Deterministic 16-bit little-endian pixel values (12 bits used), different per instance. */
function pixelData({ rows, columns }: PixelSpec, seed: number): Buffer {
  const data = Buffer.alloc(rows * columns * 2);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      data.writeUInt16LE((x * 7 + y * 13 + seed * 31 + ((x * y) >> 4)) & 0x0fff, (y * columns + x) * 2);
    }
  }
  return data;
}

function checkText(name: string, value: string, maxLength: number): string {
  if (value.length > maxLength || value.includes('\\')) throw new Error(`Invalid ${name} ${JSON.stringify(value)}`);
  return value;
}

async function writeFileWithDump2dcm(instance: SyntheticInstance, pixels: PixelSpec | undefined): Promise<void> {
  const charset = instance.specificCharacterSet;
  // Text values in the declared character set; the other values are ASCII.
  const text = (name: string, value: string, maxLength: number) => encodeText(checkText(name, value, maxLength), charset);
  const lines: Buffer[] = [];
  if (charset !== '') lines.push(element('0008,0005', 'CS', charset));
  lines.push(
    element('0008,0016', 'UI', checkUid(instance.sopClassUid)),
    element('0008,0018', 'UI', checkUid(instance.sopInstanceUid)),
    element('0008,0020', 'DA', instance.studyDate),
    element('0008,0030', 'TM', instance.studyTime),
    element('0008,0050', 'SH', text('AccessionNumber', instance.accessionNumber, 16)),
    element('0008,0060', 'CS', checkText('Modality', instance.modality, 16)),
    element('0008,1030', 'LO', text('StudyDescription', instance.studyDescription, 64)),
    element('0010,0010', 'PN', text('PatientName', instance.patientName, 64)),
    element('0010,0020', 'LO', text('PatientID', instance.patientId, 64)),
    element('0020,000d', 'UI', checkUid(instance.studyInstanceUid)),
    element('0020,000e', 'UI', checkUid(instance.seriesInstanceUid)),
    element('0020,0011', 'IS', instance.seriesNumber),
    element('0020,0013', 'IS', instance.instanceNumber),
  );
  let rawPath: string | undefined;
  if (pixels !== undefined) {
    rawPath = `${instance.path}.raw`;
    await writeFile(rawPath, pixelData(pixels, fnv1a(instance.sopInstanceUid)));
    lines.push(
      element('0028,0002', 'US', '1'),
      element('0028,0004', 'CS', 'MONOCHROME2'),
      element('0028,0010', 'US', String(pixels.rows)),
      element('0028,0011', 'US', String(pixels.columns)),
      element('0028,0100', 'US', '16'),
      element('0028,0101', 'US', '12'),
      element('0028,0102', 'US', '11'),
      element('0028,0103', 'US', '0'),
      // dump2dcm reads the value of "=file" from that file.
      Buffer.from(`(7fe0,0010) OW =${rawPath}\n`, 'latin1'),
    );
  }
  const dumpPath = `${instance.path}.dump`;
  await writeFile(dumpPath, Buffer.concat(lines));
  try {
    const xfer = instance.transferSyntaxUid === TRANSFER_SYNTAX.implicit ? '+ti' : '+te';
    const result = await runTool('dump2dcm', [xfer, dumpPath, instance.path]);
    if (!result.ok) throw new Error(`dump2dcm failed for ${instance.path}: ${result.stdout}${result.stderr}`);
  } finally {
    await rm(dumpPath, { force: true });
    if (rawPath !== undefined) await rm(rawPath, { force: true });
  }
}

function isAscii(text: string): boolean {
  return /^[\x20-\x7e]*$/.test(text);
}

/**
 * One instance with the given fields, for precise scenarios; the others have plain
 * defaults (a study and a series of its own, derived from the SOP Instance UID; an ASCII
 * name; SpecificCharacterSet ISO_IR 192 if the name is not ASCII, none otherwise). Text
 * values (names, IDs, descriptions) are written in `specificCharacterSet`. The file is
 * `fields.path`, else `directory/options.fileName`, else `directory/<SOPInstanceUID>.dcm`.
 */
export async function writeInstance(
  directory: string,
  fields: Partial<SyntheticInstance> & { sopInstanceUid: string },
  options: InstanceOptions = {},
): Promise<SyntheticInstance> {
  const { sopInstanceUid } = fields;
  const hash = fnv1a(sopInstanceUid);
  const patientName = fields.patientName ?? 'Synthetic^Patient';
  const modality = fields.modality ?? modalityOf(fields.sopClassUid) ?? 'OT';
  const transferSyntax = options.transferSyntax ?? (fields.transferSyntaxUid === TRANSFER_SYNTAX.implicit ? 'implicit' : 'explicit');
  const instance: SyntheticInstance = {
    path: fields.path ?? join(directory, options.fileName ?? `${sopInstanceUid}.dcm`),
    patientId: fields.patientId ?? `P${hash.toString(36)}`,
    patientName,
    studyInstanceUid: fields.studyInstanceUid ?? `${DEFAULT_UID_ROOT}.4.${hash}`,
    seriesInstanceUid: fields.seriesInstanceUid ?? `${DEFAULT_UID_ROOT}.5.${hash}`,
    sopInstanceUid,
    sopClassUid: fields.sopClassUid ?? SOP_CLASS[modality as keyof typeof SOP_CLASS] ?? SOP_CLASS.OT,
    modality,
    studyDate: fields.studyDate ?? '20240101',
    studyTime: fields.studyTime ?? '120000',
    accessionNumber: fields.accessionNumber ?? '',
    studyDescription: fields.studyDescription ?? 'Synthetic study',
    seriesNumber: fields.seriesNumber ?? '1',
    instanceNumber: fields.instanceNumber ?? '1',
    specificCharacterSet: fields.specificCharacterSet ?? (isAscii(patientName) ? '' : 'ISO_IR 192'),
    transferSyntaxUid: TRANSFER_SYNTAX[transferSyntax],
  };
  await mkdir(dirname(instance.path), { recursive: true });
  await writeFileWithDump2dcm(instance, options.pixels);
  return instance;
}

function modalityOf(sopClassUid: string | undefined): string | undefined {
  return Object.entries(SOP_CLASS).find(([, uid]) => uid === sopClassUid)?.[0];
}

const pad = (value: number, length = 2) => String(value).padStart(length, '0');

/** The instances of a spec, without writing them (same order as writeDataset). */
export function describeDataset(directory: string, spec: DatasetSpec): SyntheticInstance[] {
  const root = uidRoot(spec.prefix);
  const tag = idTag(spec.prefix);
  const instances: SyntheticInstance[] = [];
  let seriesIndex = 0;
  let instanceIndex = 0;
  for (let p = 0; p < spec.patients; p++) {
    const specificCharacterSet = CHARACTER_SETS[p % CHARACTER_SETS.length]!;
    const names = PATIENT_NAMES[specificCharacterSet]!;
    const patientName = names[Math.floor(p / CHARACTER_SETS.length) % names.length]!;
    const patientId = `${tag}-P${p + 1}`;
    for (let s = 0; s < spec.studiesPerPatient; s++) {
      const g = p * spec.studiesPerPatient + s; // the study's index in the dataset
      const studyInstanceUid = checkUid(`${root}.1.${p + 1}.${s + 1}`);
      const studyDate = `${2010 + ((g * 7) % 15)}${pad(1 + ((g * 5) % 12))}${pad(1 + ((g * 11) % 28))}`;
      const studyTime = `${pad(7 + ((g * 3) % 12))}${pad((g * 17) % 60)}${pad((g * 29) % 60)}`;
      const accessionNumber = `A${tag}-${g + 1}`;
      const studyDescription = STUDY_DESCRIPTIONS[g % STUDY_DESCRIPTIONS.length]!;
      for (let se = 0; se < spec.seriesPerStudy; se++, seriesIndex++) {
        const modality = MODALITY_CYCLE[seriesIndex % MODALITY_CYCLE.length]!;
        const seriesInstanceUid = checkUid(`${root}.2.${p + 1}.${s + 1}.${se + 1}`);
        for (let i = 0; i < spec.instancesPerSeries; i++, instanceIndex++) {
          const sopInstanceUid = checkUid(`${root}.3.${p + 1}.${s + 1}.${se + 1}.${i + 1}`);
          const choice = spec.transferSyntax ?? 'explicit';
          const transferSyntax = choice === 'mixed' ? (instanceIndex % 2 === 0 ? 'explicit' : 'implicit') : choice;
          instances.push({
            path: join(directory, `${sopInstanceUid}.dcm`),
            patientId,
            patientName,
            studyInstanceUid,
            seriesInstanceUid,
            sopInstanceUid,
            sopClassUid: SOP_CLASS[modality],
            modality,
            studyDate,
            studyTime,
            accessionNumber,
            studyDescription,
            seriesNumber: String(se + 1),
            instanceNumber: String(i + 1),
            specificCharacterSet,
            transferSyntaxUid: TRANSFER_SYNTAX[transferSyntax],
          });
        }
      }
    }
  }
  return instances;
}

/** Writes every instance of the spec into `directory` (created if needed), in parallel. */
export async function writeDataset(directory: string, spec: DatasetSpec): Promise<SyntheticInstance[]> {
  const instances = describeDataset(directory, spec);
  await mkdir(directory, { recursive: true });
  let next = 0;
  const worker = async () => {
    while (next < instances.length) {
      const instance = instances[next++]!;
      await writeFileWithDump2dcm(instance, spec.pixels);
    }
  };
  await Promise.all(Array.from({ length: Math.min(availableParallelism(), instances.length) }, worker));
  return instances;
}
