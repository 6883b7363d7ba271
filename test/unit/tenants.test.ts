import { describe, expect, it } from 'vitest';
import { parseConfiguration } from '../../src/configuration.js';
import { serverSpecs, tenantName, unknownModalityWarnings } from '../../src/tenants.js';

describe('tenant servers', () => {
  it('are named by their place in the configuration and their AET', () => {
    expect(tenantName({ index: 1, aet: 'HELLO' })).toBe('MultitenantDicom.Servers[1] (AET "HELLO")');
  });

  it('get Orthanc\'s global DICOM options', () => {
    const configuration = parseConfiguration({
      DicomScpTimeout: 5,
      DicomThreadsCount: 2,
      MaximumPduLength: 65536,
      DicomCheckCalledAet: true,
      MultitenantDicom: { Servers: [{ AET: 'A', Port: 4243, Labels: ['a'] }] },
    });
    expect(serverSpecs(configuration)).toEqual([
      {
        index: 0,
        name: 'MultitenantDicom.Servers[0] (AET "A")',
        aet: 'A',
        port: 4243,
        checkCalledAet: true,
        associationTimeoutSeconds: 5,
        threadsCount: 2,
        maximumPduLength: 65536,
        store: {
          absentBeforePost: '',
          labelUris: [
            '/instances/{Instance}/labels/a',
            '/series/{Series}/labels/a',
            '/studies/{Study}/labels/a',
          ],
        },
      },
    ]);
  });

  it('get the store plan of their tenant, with OverwriteInstances and fault injection', () => {
    const configuration = parseConfiguration({
      OverwriteInstances: true,
      MultitenantDicom: {
        Servers: [
          { AET: 'A', Port: 4243, Labels: ['a'], LabelsStoreLevels: ['Patient', 'Instance'] },
          { AET: 'B', Port: 4244, Labels: ['b1', 'b2'], LabelsStoreLevels: ['Instance'] },
        ],
      },
    });
    expect(serverSpecs(configuration).map((spec) => spec.store)).toEqual([
      {
        absentBeforePost: '/instances/{Instance}/labels',
        labelUris: ['/instances/{Instance}/labels/a', '/patients/{Patient}/labels/a'],
      },
      {
        absentBeforePost: '/instances/{Instance}/labels',
        labelUris: ['/instances/{Instance}/labels/b1', '/instances/{Instance}/labels/b2'],
      },
    ]);
    expect(serverSpecs(configuration, new Set(['labelWrite'])).map((spec) => spec.store.labelUris)).toEqual([
      ['/instances/{Instance}/labels/a', '/patients/{Patient}/labels/fault!injected'],
      ['/instances/{Instance}/labels/b1', '/instances/{Instance}/labels/b2'],
    ]);
    expect(serverSpecs(configuration, new Set(['allowRequest'])).map((spec) => spec.store)).toEqual(
      serverSpecs(configuration).map((spec) => spec.store),
    );
  });
});

describe('startup warnings', () => {
  it('name the modalities of AllowedCallers and AllowedMoveDestinations that Orthanc does not know', () => {
    const configuration = parseConfiguration({
      MultitenantDicom: {
        Servers: [{ AET: 'A', Port: 4243, Labels: ['a'], AllowedCallers: ['ws', 'later'], AllowedMoveDestinations: ['pacs'] }],
      },
    });
    expect(unknownModalityWarnings(configuration.servers, new Set(['ws', 'pacs']))).toEqual([
      'MultitenantDicom.Servers[0] (AET "A"): "AllowedCallers" names the modality "later", which is not in DicomModalities (yet); it matches nothing until it is added',
    ]);
  });
});
