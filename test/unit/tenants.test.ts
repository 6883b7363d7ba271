import { describe, expect, it } from 'vitest';
import { parseConfiguration } from '../../src/configuration.js';
import { tenantName } from '../../src/configuration.js';
import { serverSpecs, unknownModalityWarnings } from '../../src/lifecycle.js';

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
    expect(serverSpecs(configuration.servers, configuration.dicom)).toEqual([
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
          askBeforePost: false,
          labelWrites: [
            { level: 'Instance', label: 'a' },
            { level: 'Series', label: 'a' },
            { level: 'Study', label: 'a' },
          ],
          statuses: { filteredOut: 0, badFileFormat: 0xc000, failure: 0xa700, refused: 0x0124 },
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
    const plans = serverSpecs(configuration.servers, configuration.dicom).map((spec) => spec.store);
    expect(plans.map((plan) => plan.askBeforePost)).toEqual([true, true]);
    expect(plans.map((plan) => plan.labelWrites)).toEqual([
      [
        { level: 'Instance', label: 'a' },
        { level: 'Patient', label: 'a' },
      ],
      [
        { level: 'Instance', label: 'b1' },
        { level: 'Instance', label: 'b2' },
      ],
    ]);
    expect(serverSpecs(configuration.servers, configuration.dicom, 'last').map((spec) => spec.store.labelWrites.map((write) => write.label))).toEqual([
      ['a', 'fault!injected'],
      ['b1', 'fault!injected'],
    ]);
    expect(serverSpecs(configuration.servers, configuration.dicom, 1).map((spec) => spec.store.labelWrites.map((write) => write.label))).toEqual([
      ['fault!injected', 'a'],
      ['fault!injected', 'b2'],
    ]);
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
