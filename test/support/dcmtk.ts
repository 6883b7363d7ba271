// Thin wrappers around the DCMTK command-line clients.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DcmtkResult {
  /** The exit code; null if the tool was killed (timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
  /**
   * Exit code 0 and no error (E:) or fatal (F:) log line: some tools exit with 0 after a
   * failed operation, e.g. echoscu when the peer aborts the association instead of answering.
   */
  ok: boolean;
}

/** A dataset in the DICOM JSON model (PS3.18 F.2), keyed by tags such as "00100010". */
export type DicomJson = Record<string, { vr: string; Value?: unknown[] }>;

export interface Association {
  port: number;
  calledAet: string;
  callingAet: string;
  host?: string;
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export function runTool(command: string, args: string[], timeoutMs = DEFAULT_TIMEOUT_MS): Promise<DcmtkResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, TCP_NODELAY: '1' } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : error.code;
        if (typeof code === 'string') {
          reject(error ?? new Error(code)); // e.g. ENOENT: the tool is missing
        } else {
          const ok = code === 0 && !/^[EF]: /m.test(stdout + stderr);
          resolve({ code: code ?? null, stdout, stderr, ok });
        }
      },
    );
  });
}

function associationArgs({ calledAet, callingAet }: Association): string[] {
  return ['-aet', callingAet, '-aec', calledAet];
}

function peerArgs({ host, port }: Association): string[] {
  return [host ?? '127.0.0.1', String(port)];
}

export function echoscu(association: Association): Promise<DcmtkResult> {
  return runTool('echoscu', [...associationArgs(association), ...peerArgs(association)], association.timeoutMs);
}

export interface FindOptions extends Association {
  level: 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';
  /** `-k` arguments, e.g. "PatientName=DOE*" or "StudyInstanceUID". */
  keys: string[];
  model?: 'study' | 'patient';
}

export interface FindResult extends DcmtkResult {
  answers: DicomJson[];
}

/** C-FIND; the answers are extracted by findscu (-X) and converted by dcm2json. */
export async function findscu(options: FindOptions): Promise<FindResult> {
  const directory = await mkdtemp(join(tmpdir(), 'findscu-'));
  try {
    const result = await runTool(
      'findscu',
      [
        ...associationArgs(options),
        options.model === 'patient' ? '-P' : '-S',
        '-X',
        '-od',
        directory,
        '-k',
        `QueryRetrieveLevel=${options.level}`,
        ...options.keys.flatMap((key) => ['-k', key]),
        ...peerArgs(options),
      ],
      options.timeoutMs,
    );
    const files = (await readdir(directory)).filter((name) => name.startsWith('rsp')).sort();
    const answers: DicomJson[] = [];
    for (const file of files) {
      const converted = await runTool('dcm2json', [join(directory, file)]);
      if (converted.code !== 0) throw new Error(`dcm2json ${file} failed: ${converted.stderr}`);
      answers.push(JSON.parse(converted.stdout) as DicomJson);
    }
    return { ...result, answers };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** The values of a tag of a DICOM JSON dataset as strings (person names: their alphabetic form). */
export function dicomStrings(dataset: DicomJson, tag: string): string[] {
  return (dataset[tag.replace(/[(),]/g, '').toUpperCase()]?.Value ?? []).map((value) =>
    typeof value === 'object' && value !== null && 'Alphabetic' in value ? String(value.Alphabetic) : String(value),
  );
}

export interface StoreOptions extends Association {
  files: string[];
}

export function storescu(options: StoreOptions): Promise<DcmtkResult> {
  return runTool('storescu', [...associationArgs(options), ...peerArgs(options), ...options.files], options.timeoutMs);
}

/** Writes a DICOM file from a dcmdump-like text, e.g. "(0010,0010) PN [DOE^JOHN]" lines. */
export async function dump2dcm(dump: string, outputPath: string): Promise<void> {
  const dumpPath = `${outputPath}.dump`;
  await writeFile(dumpPath, dump);
  try {
    const result = await runTool('dump2dcm', [dumpPath, outputPath]);
    if (!result.ok) throw new Error(`dump2dcm failed: ${result.stderr}`);
  } finally {
    await rm(dumpPath, { force: true });
  }
}

/**
 * What became of a C-ECHO, as echoscu reports it:
 * - "accepted": association accepted and C-ECHO answered;
 * - "association rejected (<reason>)": the SCP rejected the association, e.g.
 *   "Calling AE Title Not Recognized" or "Called AE Title Not Recognized";
 * - "echo refused": association accepted, then aborted at the C-ECHO (echoscu exits with 0);
 * - "no association (<error>)": no DICOM association at all, e.g. nobody listens on the port;
 * - "unexpected (<output>)": anything else.
 */
export function echoOutcome(result: DcmtkResult): string {
  const output = (result.stdout + result.stderr).trim();
  if (result.ok) return 'accepted';
  const reason = output.match(/^F: Reason: (.+)$/m)?.[1];
  if (/Association Rejected/.test(output)) return `association rejected (${reason ?? 'no reason given'})`;
  if (/^E: Echo Failed/m.test(output)) return 'echo refused';
  const failure = output.match(/^F: Association Request Failed: (.+)$/m)?.[1];
  if (failure !== undefined) return `no association (${failure.replace(/^\S+ /, '')})`;
  return `unexpected (code ${result.code}: ${output.replace(/\n/g, ' | ')})`;
}
