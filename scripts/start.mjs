// `npm start`: builds the plugin, then runs Orthanc with it and a demo configuration
// of two tenants, storage and the audit trail under ./var/demo. Ctrl-C stops Orthanc cleanly.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const demoDirectory = join(root, 'var', 'demo');
const httpPort = Number(process.env.MTD_DEMO_HTTP_PORT ?? 8042);
const dicomPort = Number(process.env.MTD_DEMO_DICOM_PORT ?? 4242);

const configuration = {
  Name: 'multitenant-dicom demo',
  HttpPort: httpPort,
  DicomPort: dicomPort,
  DicomAet: 'ORTHANC',
  StorageDirectory: join(demoDirectory, 'storage'),
  IndexDirectory: join(demoDirectory, 'storage'),
  RemoteAccessAllowed: false,
  AuthenticationEnabled: false,
  Plugins: [join(root, 'build', 'libOrthancMultitenantDicom.so')],
  // A workstation that may query and retrieve through every tenant.
  DicomModalities: {
    workstation: { AET: 'WORKSTATION', Host: '127.0.0.1', Port: 4250 },
  },
  MultitenantDicom: {
    Servers: [
      { AET: 'HOSPITAL_A', Port: dicomPort + 1, Labels: ['hospital-a'] },
      { AET: 'HOSPITAL_B', Port: dicomPort + 2, Labels: ['hospital-b'] },
    ],
    AuditLog: { Path: join(demoDirectory, 'audit.jsonl') },
  },
};

execFileSync(join(root, 'scripts', 'build.sh'), { stdio: 'inherit' });
mkdirSync(demoDirectory, { recursive: true });
const configurationPath = join(demoDirectory, 'orthanc.json');
writeFileSync(configurationPath, JSON.stringify(configuration, null, 2));

const orthanc = spawn('Orthanc', [configurationPath], {
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, TCP_NODELAY: '1' },
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => orthanc.kill(signal));
}
orthanc.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

await waitForHttp(`http://127.0.0.1:${httpPort}/system`);
console.log(`
Orthanc is running with the multitenant-dicom plugin (configuration: ${configurationPath})
  HTTP (Orthanc Explorer, REST):  http://localhost:${httpPort}/
  Status page of the tenants:     http://localhost:${httpPort}/plugins/multitenant-dicom/ui/
  Metrics (Prometheus):           http://localhost:${httpPort}/plugins/multitenant-dicom/metrics
  Audit trail:                    ${configuration.MultitenantDicom.AuditLog.Path}
  Orthanc's own DICOM port:       AET ORTHANC on port ${dicomPort}
${configuration.MultitenantDicom.Servers.map((server) => `  Tenant DICOM server:            AET ${server.AET} on port ${server.Port} (labels: ${server.Labels.join(', ')})`).join('\n')}
Try: echoscu -aet WORKSTATION -aec HOSPITAL_A localhost ${dicomPort + 1}
Press Ctrl-C to stop.
`);

async function waitForHttp(url) {
  for (let attempt = 0; attempt < 300; attempt++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error(`Orthanc did not answer on ${url}`);
}
