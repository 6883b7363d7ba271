// A bad "MultitenantDicom" section stops Orthanc at startup with one error line that
// names the server, the key and the bad value (the wording of test/unit/configuration.test.ts).
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startOrthanc, stopAllOrthancs } from '../support/orthanc.js';
import { logLines, PLUGIN_PATH } from '../support/plugin.js';

afterAll(stopAllOrthancs);

const AET_EXPECTED = 'a DICOM AE title of 1 to 16 characters (printable ASCII, no backslash, not only spaces)';
const LABEL_EXPECTED = 'a label of 1 to 64 characters [A-Za-z0-9_-]';

interface BadConfigurationCase {
  name: string;
  /** Orthanc's configuration; `port` is a free port for the tenants. */
  configuration(port: number): Record<string, unknown>;
  /** The one error line the plugin logs. */
  error(port: number): string;
}

const good = (port: number, fields: Record<string, unknown> = {}) => ({ AET: 'GOOD', Port: port, Labels: ['good'], ...fields });
const servers = (...list: unknown[]) => ({ MultitenantDicom: { Servers: list } });

const CASES: BadConfigurationCase[] = [
  {
    name: 'a "Port" that is not an integer',
    configuration: (port) => servers(good(port), { AET: 'HELLO', Port: '4343x', Labels: ['x'] }),
    error: () => 'MultitenantDicom.Servers[1] (AET "HELLO"): "Port" must be an integer from 1 to 65535, got "4343x"',
  },
  {
    name: 'a "Port" out of range',
    configuration: () => servers(good(65536)),
    error: () => 'MultitenantDicom.Servers[0] (AET "GOOD"): "Port" must be an integer from 1 to 65535, got 65536',
  },
  {
    name: 'an AET that is too long',
    configuration: (port) => servers(good(port, { AET: 'THIS_IS_A_VERY_LONG_AET' })),
    error: () => `MultitenantDicom.Servers[0]: "AET" must be ${AET_EXPECTED}, got "THIS_IS_A_VERY_LONG_AET"`,
  },
  {
    name: 'a missing AET',
    configuration: (port) => servers({ Port: port, Labels: ['x'] }),
    error: () => `MultitenantDicom.Servers[0]: "AET" is required (${AET_EXPECTED})`,
  },
  {
    name: 'a label with a space',
    configuration: (port) => servers(good(port, { Labels: ['ok', 'a b'] })),
    error: () => `MultitenantDicom.Servers[0] (AET "GOOD"): "Labels"[1] must be ${LABEL_EXPECTED}, got "a b"`,
  },
  {
    name: 'an AET duplicated up to case (StrictAetComparison false by default)',
    configuration: (port) => servers(good(port, { AET: 'tenant' }), good(port + 1, { AET: 'TENANT' })),
    error: () =>
      'MultitenantDicom.Servers[1] (AET "TENANT"): "AET" duplicates the AET of Servers[0] ("tenant"); ' +
      'AETs must be unique (StrictAetComparison is false, so case is ignored)',
  },
  {
    name: "a port equal to Orthanc's HttpPort",
    configuration: (port) => ({ HttpPort: port, ...servers(good(port)) }),
    error: (port) => `MultitenantDicom.Servers[0] (AET "GOOD"): "Port" ${port} is Orthanc's own HttpPort`,
  },
  {
    name: "a port equal to Orthanc's DicomPort",
    configuration: (port) => ({ DicomPort: port, ...servers(good(port)) }),
    error: (port) => `MultitenantDicom.Servers[0] (AET "GOOD"): "Port" ${port} is Orthanc's own DicomPort`,
  },
  {
    name: 'a port shared by two servers',
    configuration: (port) => servers(good(port, { AET: 'A' }), good(port, { AET: 'B' })),
    error: (port) => `MultitenantDicom.Servers[1] (AET "B"): "Port" ${port} is already used by Servers[0] (AET "A")`,
  },
  {
    name: '"Servers" that is not an array',
    configuration: () => ({ MultitenantDicom: { Servers: { AET: 'A' } } }),
    error: () => 'MultitenantDicom: "Servers" must be an array of server objects, got {"AET":"A"}',
  },
  {
    name: 'a section that is not an object',
    configuration: () => ({ MultitenantDicom: 42 }),
    error: () => 'MultitenantDicom must be an object, got 42',
  },
  {
    name: 'a "LabelsConstraint" in the wrong case',
    configuration: (port) => servers(good(port, { LabelsConstraint: 'any' })),
    error: () =>
      'MultitenantDicom.Servers[0] (AET "GOOD"): "LabelsConstraint" must be "All", "Any" or "None" (case-sensitive), got "any"',
  },
];

describe('a bad "MultitenantDicom" configuration', () => {
  it.concurrent.each(CASES)('stops Orthanc with one error line: $name', async (badCase) => {
    const port = await freePort();
    const orthanc = await startOrthanc({
      configuration: badCase.configuration(port),
      plugins: [PLUGIN_PATH],
      expectExit: true,
      startTimeoutMs: 30_000,
    });
    const exit = await orthanc.exited;
    const log = orthanc.log();

    expect(exit.code, `${badCase.name}: exit code\n${log}`).not.toBe(0);
    expect(exit.signal, `${badCase.name}: killed by a signal\n${log}`).toBeNull();

    // Exactly one error line from the plugin, and it is the expected one.
    const pluginErrors = logLines(log)
      .filter((line) => line.level === 'E' && line.source.startsWith('multitenant-dicom:'))
      .map((line) => line.message);
    expect(pluginErrors, `${badCase.name}: the plugin's error lines`).toEqual([badCase.error(port)]);
    expect(log, `${badCase.name}: no tenant server starts`).not.toMatch(/multitenant DICOM server listening/);
  });
});
