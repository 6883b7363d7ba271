import { afterAll, it } from 'vitest';
import { echoscu } from '../support/dcmtk.js';
import { freePort, startOrthanc, stopAllOrthancs } from '../support/orthanc.js';
afterAll(stopAllOrthancs);
it('probe', async () => {
  const p1 = await freePort(), p2 = await freePort();
  const o = await startOrthanc({
    plugins: ['/work/main/build/libOrthancMultitenantDicom.so'],
    configuration: {
      DicomAlwaysAllowEcho: false, DicomAlwaysAllowStore: false, DicomCheckCalledAet: true,
      DicomModalities: { k: { AET: 'KNOWN', Host: '127.0.0.1', Port: 104, AllowEcho: false }, k2: { AET: 'KNOWN2', Host: '127.0.0.1', Port: 104 } },
      MultitenantDicom: { Servers: [{ AET: 'T1', Port: p1, Labels: ['a'] }, { AET: 'T2', Port: p2, Labels: ['b'] }] },
    },
    waitForPorts: [p1, p2],
  });
  for (const [port, aec] of [[o.dicomPort, 'ORTHANC'], [p1, 'T1']] as const) {
    for (const [aet, c] of [['STRANGER', aec], ['KNOWN', aec], ['KNOWN2', aec], ['KNOWN2', 'WRONG']]) {
      const r = await echoscu({ port, calledAet: c, callingAet: aet });
      console.log(port, aet, c, JSON.stringify(r));
    }
  }
  console.log(o.log());
});
