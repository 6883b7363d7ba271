// The test harness itself, against a plain Orthanc (no plugin).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dicomStrings, dump2dcm, echoscu, findscu, storescu } from '../support/dcmtk.js';
import { startOrthanc, stopAllOrthancs } from '../support/orthanc.js';

afterAll(stopAllOrthancs);

describe('test harness with plain Orthanc', () => {
  it('starts Orthanc, answers C-ECHO from anyone by default, and stops with 0 on SIGTERM', async () => {
    const orthanc = await startOrthanc({ configuration: { DicomAet: 'HARNESS', DicomAlwaysAllowEcho: true } });

    const system = await orthanc.rest<{ DicomAet: string; DicomPort: number; Version: string }>('GET', '/system');
    expect(system.status).toBe(200);
    expect(system.body).toMatchObject({ DicomAet: 'HARNESS', DicomPort: orthanc.dicomPort });

    const echo = await echoscu({ port: orthanc.dicomPort, calledAet: 'HARNESS', callingAet: 'STRANGER' });
    expect(echo).toMatchObject({ code: 0, ok: true });

    const exit = await orthanc.stop();
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(orthanc.log()).toMatch(/Orthanc has stopped/);
  });

  it('refuses C-ECHO from an unknown AET when DicomAlwaysAllowEcho is false', async () => {
    const orthanc = await startOrthanc({
      configuration: {
        DicomAlwaysAllowEcho: false,
        DicomModalities: { known: { AET: 'KNOWN', Host: '127.0.0.1', Port: 104 } },
      },
    });
    const association = { port: orthanc.dicomPort, calledAet: 'ORTHANC' };

    // Store is still always allowed, so the association is accepted, then aborted at the
    // C-ECHO: echoscu reports it but still exits with 0.
    const refused = await echoscu({ ...association, callingAet: 'STRANGER' });
    expect(refused.ok).toBe(false);
    expect(refused.stdout + refused.stderr).toMatch(/Echo Failed/);
    await orthanc.waitForLog(/DICOM authorization rejected +for AET STRANGER on IP 127\.0\.0\.1/);

    expect((await echoscu({ ...association, callingAet: 'KNOWN' })).ok).toBe(true);
  });

  it('refuses the association itself when no request type is always allowed', async () => {
    const orthanc = await startOrthanc({
      configuration: { DicomAlwaysAllowEcho: false, DicomAlwaysAllowStore: false },
    });
    const refused = await echoscu({ port: orthanc.dicomPort, calledAet: 'ORTHANC', callingAet: 'STRANGER' });
    expect(refused).toMatchObject({ code: 1, ok: false });
    expect(refused.stdout + refused.stderr).toMatch(/Calling AE Title Not Recognized/);
  });

  it('stores with storescu and finds with findscu', async () => {
    const orthanc = await startOrthanc({ configuration: { DicomAlwaysAllowFind: true } });
    const file = join(await mkdtemp(join(tmpdir(), 'harness-')), 'instance.dcm');
    await dump2dcm(
      [
        '(0008,0016) UI =SecondaryCaptureImageStorage',
        '(0008,0018) UI [1.2.826.0.1.3680043.10.1.1.1.1]',
        '(0008,0060) CS [OT]',
        '(0010,0010) PN [DOE^JOHN]',
        '(0010,0020) LO [HARNESS-1]',
        '(0020,000d) UI [1.2.826.0.1.3680043.10.1.1]',
        '(0020,000e) UI [1.2.826.0.1.3680043.10.1.1.1]',
      ].join('\n'),
      file,
    );
    const association = { port: orthanc.dicomPort, calledAet: 'ORTHANC', callingAet: 'SCU' };

    expect((await storescu({ ...association, files: [file] })).ok).toBe(true);

    const found = await findscu({ ...association, level: 'STUDY', keys: ['PatientName=DOE*', 'PatientID', 'StudyInstanceUID'] });
    expect(found.ok).toBe(true);
    expect(found.answers).toHaveLength(1);
    const [answer] = found.answers;
    expect(dicomStrings(answer!, '0010,0010')).toEqual(['DOE^JOHN']);
    expect(dicomStrings(answer!, '(0020,000D)')).toEqual(['1.2.826.0.1.3680043.10.1.1']);

    const none = await findscu({ ...association, level: 'STUDY', keys: ['PatientName=NOBODY'] });
    expect(none).toMatchObject({ ok: true, answers: [] });
  });

  it('reports a failed startup with its log, or lets the caller expect it', async () => {
    const plugins = ['/nonexistent/libPlugin.so'];
    await expect(startOrthanc({ configuration: {}, plugins })).rejects.toThrow(/exited during startup[\s\S]*libPlugin/);

    const orthanc = await startOrthanc({ configuration: {}, plugins, expectExit: true });
    const exit = await orthanc.exited;
    expect(exit.code).not.toBe(0);
    expect(orthanc.log()).toMatch(/libPlugin/);
  });
});
