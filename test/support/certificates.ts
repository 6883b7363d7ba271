// Keys and certificates for DICOM TLS, made by openssl for the tests and the bench:
// P-256 keys, valid two days, in PEM files named after them.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Certificate {
  key: string;
  crt: string;
}

/** `directory`/`name`.key and .crt, signed by the certificate authority `ca` made before in the same folder (or self-signed). */
export async function makeCertificate(directory: string, name: string, ca?: string): Promise<Certificate> {
  const key = join(directory, `${name}.key`);
  const crt = join(directory, `${name}.crt`);
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  if (ca === undefined) {
    await run('openssl', ['req', '-x509', '-new', '-key', key, '-out', crt, '-days', '2', '-subj', `/CN=${name}`]);
  } else {
    const csr = join(directory, `${name}.csr`);
    await run('openssl', ['req', '-new', '-key', key, '-out', csr, '-subj', `/CN=${name}`]);
    const authority = join(directory, ca);
    await run('openssl', ['x509', '-req', '-in', csr, '-CA', `${authority}.crt`, '-CAkey', `${authority}.key`, '-CAcreateserial', '-out', crt, '-days', '2']);
  }
  return { key, crt };
}
