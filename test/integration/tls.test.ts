// DICOM TLS on the tenants' ports, with certificates made here by openssl:
// - a server CA signs Orthanc's certificate (Orthanc's global DicomTls* options) and
//   TLS_B's own one; clients check the server with it;
// - hospital A's CA signs A's client certificate, trusted on TLS_A's port only (its
//   entry's DicomTlsTrustedCertificates); hospital B's the same for TLS_B;
// - PLAIN stays plaintext beside them; BROKEN names a certificate that does not exist.
// And C-MOVE sub-operations use TLS when the destination's modality entry says
// "UseDicomTls", as Orthanc's core does.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCertificate } from '../support/certificates.js';
import { writeInstance, type SyntheticInstance } from '../support/dataset.js';
import { runTool, type DcmtkResult } from '../support/dcmtk.js';
import { canConnect, freePort, startOrthanc, stopAllOrthancs, type RunningOrthanc } from '../support/orthanc.js';
import { literal, multitenantSection, PLUGIN_PATH, tenantName } from '../support/plugin.js';

const CALLING = 'TLS_TEST';

let work: string;
let orthanc: RunningOrthanc;
let destination: ChildProcess | undefined;
const port: Record<string, number> = {};
let files: Record<string, string>;
let instance: SyntheticInstance;
let plainInstance: SyntheticInstance;
let destinationDirectory: string;

/** DCMTK's TLS arguments for a client presenting `client` and trusting the server CA. */
const tlsArgs = (client: string) => ['+tls', files[`${client}.key`]!, files[`${client}.crt`]!, '+cf', files['server-ca.crt']!];

function echo(aet: string, client?: string): Promise<DcmtkResult> {
  return runTool('echoscu', [...(client ? tlsArgs(client) : []), '-aet', CALLING, '-aec', aet, '127.0.0.1', String(port[aet])], 30_000);
}

function store(aet: string, client: string | undefined, path: string): Promise<DcmtkResult> {
  return runTool('storescu', [...(client ? tlsArgs(client) : []), '-aet', CALLING, '-aec', aet, '127.0.0.1', String(port[aet]), path], 30_000);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tls-test-'));
  files = {};
  for (const [name, ca] of [
    ['server-ca', undefined],
    ['hospital-a-ca', undefined],
    ['hospital-b-ca', undefined],
    ['orthanc', 'server-ca'],
    ['tls-b', 'server-ca'],
    ['destination', 'server-ca'],
    ['client-a', 'hospital-a-ca'],
    ['client-b', 'hospital-b-ca'],
    ['stranger', undefined],
  ] as const) {
    const made = await makeCertificate(work, name, ca);
    files[`${name}.key`] = made.key;
    files[`${name}.crt`] = made.crt;
  }
  for (const aet of ['TLS_A', 'TLS_B', 'PLAIN', 'BROKEN']) port[aet] = await freePort();

  destinationDirectory = join(work, 'received');
  await mkdir(destinationDirectory);
  const destinationPort = await freePort();
  destination = spawn(
    'storescp',
    ['+tls', files['destination.key']!, files['destination.crt']!, '+cf', files['server-ca.crt']!, '-aet', 'TLS_DEST', '-od', destinationDirectory, String(destinationPort)],
    { stdio: 'ignore' },
  );
  while (!(await canConnect(destinationPort))) await sleep(20);

  orthanc = await startOrthanc({
    configuration: {
      HttpPort: await freePort(),
      DicomPort: await freePort(),
      // Orthanc's own port stays plaintext; its certificate serves the tenants without their own.
      DicomTlsEnabled: false,
      DicomTlsCertificate: files['orthanc.crt'],
      DicomTlsPrivateKey: files['orthanc.key'],
      DicomTlsTrustedCertificates: files['server-ca.crt'],
      DicomTlsRemoteCertificateRequired: true,
      DicomModalities: {
        tester: { AET: CALLING, Host: '127.0.0.1', Port: 104 },
        destination: { AET: 'TLS_DEST', Host: '127.0.0.1', Port: destinationPort, UseDicomTls: true },
      },
      ...multitenantSection(
        { AET: 'TLS_A', Port: port['TLS_A']!, Labels: ['tls_a'], DicomTlsEnabled: true, DicomTlsTrustedCertificates: files['hospital-a-ca.crt'] },
        {
          AET: 'TLS_B',
          Port: port['TLS_B']!,
          Labels: ['tls_b'],
          DicomTlsEnabled: true,
          DicomTlsCertificate: files['tls-b.crt'],
          DicomTlsPrivateKey: files['tls-b.key'],
          DicomTlsTrustedCertificates: files['hospital-b-ca.crt'],
        },
        { AET: 'PLAIN', Port: port['PLAIN']!, Labels: ['plain'] },
        { AET: 'BROKEN', Port: port['BROKEN']!, Labels: ['broken'], DicomTlsEnabled: true, DicomTlsCertificate: join(work, 'missing.crt') },
      ),
    },
    plugins: [PLUGIN_PATH],
    waitForPorts: [port['TLS_A']!, port['TLS_B']!, port['PLAIN']!],
  });
  instance = await writeInstance(join(work, 'data'), { patientId: 'TLS-P', patientName: 'Sécurité^Ωmega', sopInstanceUid: '1.2.826.0.1.3680043.10.1234.7171.1' });
  plainInstance = await writeInstance(join(work, 'data'), { patientId: 'PLAIN-P', patientName: 'Klartext^Jürgen', sopInstanceUid: '1.2.826.0.1.3680043.10.1234.7171.2' });
}, 180_000);

afterAll(async () => {
  destination?.kill();
  await stopAllOrthancs();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('a tenant port with DICOM TLS', () => {
  it('serves a client whose certificate its trusted certificates sign: C-ECHO, C-STORE, then C-FIND of what it stored', async () => {
    expect((await echo('TLS_A', 'client-a')).code).toBe(0);
    const stored = await store('TLS_A', 'client-a', instance.path);
    expect(stored.code, stored.stderr).toBe(0);
    const found = await runTool('findscu', [...tlsArgs('client-a'), '-v', '-S', '-aet', CALLING, '-aec', 'TLS_A', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=TLS-P', '-k', 'StudyInstanceUID', '127.0.0.1', String(port['TLS_A'])], 30_000);
    expect(found.stderr).toMatch(/Received Final Find Response \(Success\)/);
    expect(found.stderr).toContain(instance.studyInstanceUid);
  });

  it('refuses a plaintext client', async () => {
    const plain = await echo('TLS_A');
    expect(plain.code, plain.stderr).not.toBe(0);
  });

  it('refuses a client whose certificate its trusted certificates do not sign (a self-signed one)', async () => {
    const stranger = await echo('TLS_A', 'stranger');
    expect(stranger.code, stranger.stderr).not.toBe(0);
  });

  it('trusts a hospital\'s CA on its own tenant\'s port only: B\'s client is refused by TLS_A, served by TLS_B (with its own certificate)', async () => {
    expect((await echo('TLS_A', 'client-b')).code).not.toBe(0);
    expect((await echo('TLS_B', 'client-b')).code).toBe(0);
    expect((await echo('TLS_B', 'client-a')).code).not.toBe(0);
  });

  it('a plaintext tenant beside them keeps working, and refuses TLS', async () => {
    expect((await echo('PLAIN')).code).toBe(0);
    expect((await echo('PLAIN', 'client-a')).code).not.toBe(0);
  });
});

describe('a tenant whose TLS cannot start', () => {
  it('is not served, with one error naming the server and the key; the others run', async () => {
    const line = `${tenantName(3, 'BROKEN')}: DICOM TLS cannot start: "DicomTlsCertificate" ${join(work, 'missing.crt')} cannot be read; this tenant is not served, the other tenants are`;
    await orthanc.waitForLog(literal(line), 30_000);
    expect(await canConnect(port['BROKEN']!)).toBe(false);
    expect((await echo('PLAIN')).code).toBe(0);
  });
});

describe('C-MOVE to a destination whose modality entry says "UseDicomTls"', () => {
  it('sends over DICOM TLS, with Orthanc\'s certificate, which the destination checks', async () => {
    const stored = await store('PLAIN', undefined, plainInstance.path);
    expect(stored.code, stored.stderr).toBe(0);
    const moved = await runTool(
      'movescu',
      ['-v', '-S', '-aet', CALLING, '-aec', 'PLAIN', '-aem', 'TLS_DEST', '-k', 'QueryRetrieveLevel=STUDY', '-k', `StudyInstanceUID=${plainInstance.studyInstanceUid}`, '127.0.0.1', String(port['PLAIN'])],
      60_000,
    );
    expect(moved.stderr, moved.stderr).toMatch(/Received Final Move Response \(Success\)/);
    expect((await readdir(destinationDirectory)).length).toBe(1);
  });
});
