import { describe, expect, it } from 'vitest';
import { decideAllowedCaller, decideConnection, decideRequest, type AccessOptions } from '../../src/access.js';
import { parseModalities, type DicomRequestType, type RemoteModality } from '../../src/modalities.js';

const ALL_TYPES: DicomRequestType[] = ['Echo', 'Find', 'FindWorklist', 'Get', 'Move', 'Store', 'NAction', 'NEventReport'];

const NOTHING_ALWAYS_ALLOWED: AccessOptions = {
  strictAetComparison: false,
  checkModalityHost: false,
  alwaysAllowEcho: false,
  alwaysAllowFind: false,
  alwaysAllowFindWorklist: false,
  alwaysAllowGet: false,
  alwaysAllowMove: false,
  alwaysAllowStore: false,
};

const ALWAYS_ALLOW_OPTION: Partial<Record<DicomRequestType, keyof AccessOptions>> = {
  Echo: 'alwaysAllowEcho',
  Find: 'alwaysAllowFind',
  FindWorklist: 'alwaysAllowFindWorklist',
  Get: 'alwaysAllowGet',
  Move: 'alwaysAllowMove',
  Store: 'alwaysAllowStore',
};

function options(overrides: Partial<AccessOptions> = {}): AccessOptions {
  return { ...NOTHING_ALWAYS_ALLOWED, ...overrides };
}

function modality(name: string, aet: string, host: string, denied: DicomRequestType[] = []): RemoteModality {
  const allowed = Object.fromEntries(ALL_TYPES.map((type) => [type, !denied.includes(type)]));
  return { name, aet, host, port: 104, allowed: allowed as Record<DicomRequestType, boolean>, allowTranscoding: true, serialized: { AET: aet, Host: host, Port: 104 } };
}

const caller = (aet: string, ip = '10.0.0.1') => ({ aet, ip, calledAet: 'TENANT_A' });

describe('parseModalities', () => {
  // Shape of GET /modalities?expand on Orthanc 1.12.7.
  const serialized = (aet: string, host: string, port: number, flags: Record<string, boolean> = {}) => ({
    AET: aet,
    AllowEcho: true,
    AllowEventReport: true,
    AllowFind: true,
    AllowFindWorklist: true,
    AllowGet: true,
    AllowMove: true,
    AllowNAction: true,
    AllowStore: true,
    AllowTranscoding: true,
    Host: host,
    LocalAet: '',
    Manufacturer: 'Generic',
    Port: port,
    RetrieveMethod: 'SystemDefault',
    Timeout: 0,
    UseDicomTls: false,
    ...flags,
  });
  const payload = JSON.parse(
    JSON.stringify({
      '10': serialized('X', 'h', 1),
      '9': serialized('Y', 'h', 2),
      a: serialized('A', '10.0.0.1', 105, { AllowGet: false, AllowEventReport: false, AllowNAction: false }),
      b: serialized('B', '10.0.0.2', 104),
    }),
  ) as unknown;

  it('reads AET, host, port and every Allow* flag', () => {
    const a = parseModalities(payload).find((m) => m.name === 'a');
    expect(a).toEqual({
      name: 'a',
      aet: 'A',
      host: '10.0.0.1',
      port: 105,
      allowed: {
        Echo: true,
        Find: true,
        FindWorklist: true,
        Get: false,
        Move: true,
        Store: true,
        NAction: false,
        NEventReport: false,
      },
      allowTranscoding: true,
      serialized: (payload as Record<string, unknown>)['a'],
    });
  });

  it('sorts by symbolic name bytewise, as std::map, not as JS object keys', () => {
    expect(parseModalities(payload).map((m) => m.name)).toEqual(['10', '9', 'a', 'b']);
    expect(parseModalities({ b: ['B', 'h', 1], B: ['B', 'h', 1], é: ['E', 'h', 1], z: ['Z', 'h', 1] }).map((m) => m.name)).toEqual([
      'B',
      'b',
      'z',
      'é',
    ]);
  });

  it('defaults missing flags to true, as RemoteModalityParameters', () => {
    const [m] = parseModalities({ m: { AET: 'M', Host: 'h', Port: '4242', AllowStorageCommitment: false } });
    expect(m?.port).toBe(4242);
    expect(m?.allowed).toEqual({
      Echo: true,
      Find: true,
      FindWorklist: true,
      Get: true,
      Move: true,
      Store: true,
      NAction: false,
      NEventReport: false,
    });
  });

  it('accepts the short array format', () => {
    expect(parseModalities({ m: ['M', '1.2.3.4', 104, 'Generic'] })).toEqual([modality('m', 'M', '1.2.3.4')]);
  });

  it('rejects malformed payloads', () => {
    expect(() => parseModalities(['a'])).toThrow();
    expect(() => parseModalities({ m: { AET: 'M', Host: 'h' } })).toThrow(/port/);
    expect(() => parseModalities({ m: { AET: 'M', Host: 'h', Port: 70000 } })).toThrow(/port/);
    expect(() => parseModalities({ m: { AET: 1, Host: 'h', Port: 1 } })).toThrow(/AET/);
    expect(() => parseModalities({ m: { AET: 'M', Host: 'h', Port: 1, AllowFind: 'yes' } })).toThrow(/AllowFind/);
  });
});

describe('decideConnection', () => {
  const modalities = [modality('first', 'SCANNER', '10.0.0.1'), modality('second', 'SCANNER', '10.0.0.2')];

  it.each(Object.values(ALWAYS_ALLOW_OPTION))('accepts anyone when %s is set', (option) => {
    expect(decideConnection(options({ [option!]: true }), [], caller('UNKNOWN'))).toEqual({ allowed: true });
  });

  it('refuses an unknown AET, naming the AET, the IP and the called AET', () => {
    const decision = decideConnection(options(), modalities, caller('UNKNOWN', '10.9.9.9'));
    expect(decision.allowed).toBe(false);
    expect(decision.reason).toContain('"UNKNOWN"');
    expect(decision.reason).toContain('10.9.9.9');
    expect(decision.reason).toContain('TENANT_A');
  });

  it('compares AETs case-insensitively unless strict', () => {
    expect(decideConnection(options(), modalities, caller('scanner')).allowed).toBe(true);
    expect(decideConnection(options({ strictAetComparison: true }), modalities, caller('scanner')).allowed).toBe(false);
    expect(decideConnection(options({ strictAetComparison: true }), modalities, caller('SCANNER')).allowed).toBe(true);
  });

  it('folds only ASCII letters, as C tolower', () => {
    expect(decideConnection(options(), [modality('m', 'ÉCHO', 'h')], caller('éCHO')).allowed).toBe(false);
    expect(decideConnection(options(), [modality('m', 'ÉCHO', 'h')], caller('Écho')).allowed).toBe(true);
  });

  it('ignores the IP without the host check', () => {
    expect(decideConnection(options(), modalities, caller('SCANNER', '192.168.1.1')).allowed).toBe(true);
  });

  it('with the host check, looks only at the first modality by symbolic name', () => {
    const check = options({ checkModalityHost: true });
    expect(decideConnection(check, modalities, caller('SCANNER', '10.0.0.1')).allowed).toBe(true);
    const refused = decideConnection(check, modalities, caller('SCANNER', '10.0.0.2'));
    expect(refused.allowed).toBe(false);
    expect(refused.reason).toContain('10.0.0.1 was expected');
    expect(refused.reason).toContain('TENANT_A');
  });

  it('does not look at the Allow* flags', () => {
    expect(decideConnection(options(), [modality('m', 'SCANNER', 'h', ALL_TYPES)], caller('SCANNER')).allowed).toBe(true);
  });
});

describe('decideRequest', () => {
  describe.each(ALL_TYPES)('%s', (type) => {
    const option = ALWAYS_ALLOW_OPTION[type];

    if (option !== undefined) {
      it('is accepted from an unknown AET when always allowed', () => {
        expect(decideRequest(options({ [option]: true }), [], caller('UNKNOWN'), type)).toEqual({ allowed: true });
      });
    }

    it('is not accepted from an unknown AET when other types are always allowed', () => {
      const others = Object.fromEntries(
        Object.values(ALWAYS_ALLOW_OPTION)
          .filter((o) => o !== option)
          .map((o) => [o, true]),
      );
      expect(decideRequest(options(others), [], caller('UNKNOWN'), type).allowed).toBe(false);
    });

    it('follows the Allow flag of a single modality', () => {
      expect(decideRequest(options(), [modality('m', 'SCANNER', 'h')], caller('SCANNER'), type).allowed).toBe(true);
      const refused = decideRequest(options(), [modality('m', 'SCANNER', 'h', [type])], caller('SCANNER'), type);
      expect(refused.allowed).toBe(false);
      expect(refused.reason).toMatch(/not allowed for this modality/);
    });
  });

  it('names the request type as Orthanc does in its refusal', () => {
    const denied = [modality('m', 'SCANNER', 'h', ALL_TYPES)];
    expect(decideRequest(options(), denied, caller('SCANNER'), 'NAction').reason).toContain('N-ACTION');
    expect(decideRequest(options(), denied, caller('SCANNER'), 'NEventReport').reason).toContain('N-EVENT-REPORT');
    expect(decideRequest(options(), denied, caller('SCANNER'), 'FindWorklist').reason).toContain('FindWorklist');
  });

  it('refuses an unknown AET, naming the AET, the IP and the called AET', () => {
    const decision = decideRequest(options(), [modality('m', 'SCANNER', 'h')], caller('OTHER', '10.7.7.7'), 'Find');
    expect(decision.allowed).toBe(false);
    expect(decision.reason).toContain('AET OTHER on IP 10.7.7.7');
    expect(decision.reason).toContain('TENANT_A');
    expect(decision.reason).toContain('not listed');
  });

  it('compares AETs case-insensitively unless strict', () => {
    const modalities = [modality('m', 'Scanner', 'h')];
    expect(decideRequest(options(), modalities, caller('SCANNER'), 'Find').allowed).toBe(true);
    expect(decideRequest(options({ strictAetComparison: true }), modalities, caller('SCANNER'), 'Find').allowed).toBe(false);
    expect(decideRequest(options({ strictAetComparison: true }), modalities, caller('Scanner'), 'Find').allowed).toBe(true);
  });

  describe('a single modality with the host check', () => {
    const check = options({ checkModalityHost: true });

    it('accepts its own IP', () => {
      expect(decideRequest(check, [modality('m', 'SCANNER', '10.0.0.1')], caller('SCANNER', '10.0.0.1'), 'Find').allowed).toBe(true);
    });

    it('refuses another IP, even if the request is allowed', () => {
      const decision = decideRequest(check, [modality('m', 'SCANNER', '10.0.0.1')], caller('SCANNER', '10.0.0.2'), 'Find');
      expect(decision.allowed).toBe(false);
      expect(decision.reason).toContain('Its IP address should be 10.0.0.1');
    });

    it('still checks the Allow flag at its own IP', () => {
      const m = modality('m', 'SCANNER', '10.0.0.1', ['Find']);
      expect(decideRequest(check, [m], caller('SCANNER', '10.0.0.1'), 'Find').allowed).toBe(false);
    });

    it('is bypassed by an always-allow flag', () => {
      const m = modality('m', 'SCANNER', '10.0.0.1');
      expect(decideRequest({ ...check, alwaysAllowStore: true }, [m], caller('SCANNER', '10.6.6.6'), 'Store').allowed).toBe(true);
    });
  });

  describe('several modalities sharing an AET', () => {
    const findDeniedOnSecond = [modality('a', 'SCANNER', '10.0.0.1'), modality('b', 'scanner', '10.0.0.2', ['Find'])];
    const allAllowFind = [modality('a', 'SCANNER', '10.0.0.1'), modality('b', 'SCANNER', '10.0.0.2')];

    it('without the host check, needs every one of them to allow the request', () => {
      expect(decideRequest(options(), allAllowFind, caller('SCANNER', '10.0.0.1'), 'Find').allowed).toBe(true);
      const decision = decideRequest(options(), findDeniedOnSecond, caller('SCANNER', '10.0.0.1'), 'Find');
      expect(decision.allowed).toBe(false);
      expect(decision.reason).toContain('2 modalities found with this AET');
      expect(decision.reason).toContain('not allowed for all of them');
    });

    it('with strict comparison, only counts exact AETs', () => {
      expect(
        decideRequest(options({ strictAetComparison: true }), findDeniedOnSecond, caller('SCANNER', '10.0.0.1'), 'Find').allowed,
      ).toBe(true);
    });

    it('with the host check, accepts the IP of a modality allowing the request', () => {
      const check = options({ checkModalityHost: true });
      expect(decideRequest(check, findDeniedOnSecond, caller('SCANNER', '10.0.0.1'), 'Find').allowed).toBe(true);
      const decision = decideRequest(check, findDeniedOnSecond, caller('SCANNER', '10.0.0.2'), 'Find');
      expect(decision.allowed).toBe(false);
      expect(decision.reason).toContain('allowed for none of them matching the IP');
      expect(decideRequest(check, findDeniedOnSecond, caller('SCANNER', '10.0.0.3'), 'Find').allowed).toBe(false);
    });

    it('with the host check, accepts any IP when all of them allow the request (as the core)', () => {
      const check = options({ checkModalityHost: true });
      expect(decideRequest(check, allAllowFind, caller('SCANNER', '192.168.0.1'), 'Find').allowed).toBe(true);
    });
  });
});

describe('decideAllowedCaller', () => {
  const modalities = [
    modality('ws1', 'WS1AE', '10.0.0.1'),
    modality('ws2', 'WS2AE', '10.0.0.1'),
    modality('mute', 'MUTEAE', '10.0.0.1', ALL_TYPES), // every request type denied
    // One AET, two modalities: the listed one on 10.0.0.2, the unlisted one on 10.0.0.1.
    modality('twin-listed', 'TWINAE', '10.0.0.2'),
    modality('twin-other', 'TWINAE', '10.0.0.1'),
    // One AET, two listed modalities on different hosts.
    modality('pair-a', 'PAIRAE', '10.0.0.2'),
    modality('pair-b', 'PAIRAE', '10.0.0.3'),
  ];
  const list = ['ws1', 'mute', 'twin-listed', 'pair-a', 'pair-b', 'later'];
  const lenient = { strictAetComparison: false, checkModalityHost: false };
  const strict = { strictAetComparison: true, checkModalityHost: false };
  const hostCheck = { strictAetComparison: false, checkModalityHost: true };
  const decide = (opts: typeof lenient, aet: string, ip = '10.0.0.1', allowed: readonly string[] | undefined = list) =>
    decideAllowedCaller(opts, modalities, caller(aet, ip), allowed);

  it('lets everyone through without the key (Orthanc\'s own rules then decide)', () => {
    expect(decideAllowedCaller(lenient, modalities, caller('STRANGER', '10.9.9.9'), undefined), 'unknown AET, no AllowedCallers').toEqual({
      allowed: true,
    });
    expect(
      decideAllowedCaller(hostCheck, modalities, caller('WS2AE', '10.9.9.9'), undefined),
      'unlisted modality from another host, no AllowedCallers',
    ).toEqual({ allowed: true });
  });

  it('lets a listed modality through', () => {
    expect(decide(lenient, 'WS1AE'), 'ws1 by its AET').toEqual({ allowed: true });
  });

  it('does not look at the Allow* flags (the core\'s rules do, afterwards)', () => {
    expect(decide(lenient, 'MUTEAE'), 'listed mute, every request type denied').toEqual({ allowed: true });
  });

  it('refuses a known modality that is not listed, naming the AET, the IP, the called AET and the list', () => {
    const decision = decide(lenient, 'WS2AE', '10.7.7.7');
    expect(decision.allowed, 'unlisted ws2').toBe(false);
    expect(decision.reason, 'unlisted ws2: reason').toBe(
      'AET "WS2AE" on IP 10.7.7.7 is not one of the AllowedCallers of AET TENANT_A (ws1, mute, twin-listed, pair-a, pair-b, later)',
    );
  });

  it('refuses an unknown AET, and a listed modality name used as AET', () => {
    expect(decide(lenient, 'STRANGER').allowed, 'unknown AET').toBe(false);
    expect(decide(lenient, 'ws1').allowed, 'the modality name "ws1" as calling AET').toBe(false);
  });

  it('refuses a listed name that is not in DicomModalities (yet)', () => {
    expect(decide(lenient, 'LATERAE').allowed, 'listed "later", absent from DicomModalities').toBe(false);
    const added = [...modalities, modality('later', 'LATERAE', '10.0.0.1')];
    expect(decideAllowedCaller(lenient, added, caller('LATERAE'), list), '"later" once added').toEqual({ allowed: true });
  });

  it('refuses everyone with an empty list', () => {
    expect(decide(lenient, 'WS1AE', '10.0.0.1', []).allowed, 'ws1, AllowedCallers []').toBe(false);
  });

  it('matches modality names exactly (they are case-sensitive keys)', () => {
    expect(decide(lenient, 'WS1AE', '10.0.0.1', ['WS1']).allowed, 'AllowedCallers ["WS1"], modality "ws1"').toBe(false);
  });

  it('compares AETs as StrictAetComparison says', () => {
    expect(decide(lenient, 'ws1ae'), 'ws1 in lower case, not strict').toEqual({ allowed: true });
    expect(decide(strict, 'ws1ae').allowed, 'ws1 in lower case, strict').toBe(false);
    expect(decide(strict, 'WS1AE'), 'ws1, strict').toEqual({ allowed: true });
    expect(decide(lenient, 'éS1AE', '10.0.0.1', list).allowed, 'only ASCII letters are folded').toBe(false);
  });

  it('ignores the caller\'s IP without DicomCheckModalityHost', () => {
    expect(decide(lenient, 'WS1AE', '192.168.1.1'), 'ws1 from another host').toEqual({ allowed: true });
    expect(decide(lenient, 'TWINAE', '10.0.0.1'), 'TWINAE from the unlisted twin\'s host').toEqual({ allowed: true });
  });

  describe('with DicomCheckModalityHost', () => {
    it('lets a listed modality through from its own host only', () => {
      expect(decide(hostCheck, 'WS1AE', '10.0.0.1'), 'ws1 from its host').toEqual({ allowed: true });
      const decision = decide(hostCheck, 'WS1AE', '10.0.0.9');
      expect(decision.allowed, 'ws1 from another host').toBe(false);
      expect(decision.reason, 'ws1 from another host: reason').toBe(
        'AET "WS1AE" on IP 10.0.0.9 is one of the AllowedCallers of AET TENANT_A, but from another host ' +
          '(10.0.0.1 expected, DicomCheckModalityHost is true)',
      );
    });

    it('compares the host exactly, as the core (no name resolution)', () => {
      const local = [modality('ws1', 'WS1AE', 'localhost')];
      expect(decideAllowedCaller(hostCheck, local, caller('WS1AE', '127.0.0.1'), ['ws1']).allowed, 'Host "localhost", IP 127.0.0.1').toBe(false);
    });

    it('refuses an AET shared with an unlisted modality when the caller is on the unlisted one\'s host', () => {
      expect(decide(hostCheck, 'TWINAE', '10.0.0.1').allowed, 'TWINAE from twin-other\'s host').toBe(false);
      expect(decide(hostCheck, 'TWINAE', '10.0.0.2'), 'TWINAE from twin-listed\'s host').toEqual({ allowed: true });
    });

    it('accepts the host of any listed modality with this AET', () => {
      expect(decide(hostCheck, 'PAIRAE', '10.0.0.2'), 'PAIRAE from pair-a\'s host').toEqual({ allowed: true });
      expect(decide(hostCheck, 'PAIRAE', '10.0.0.3'), 'PAIRAE from pair-b\'s host').toEqual({ allowed: true });
      const decision = decide(hostCheck, 'PAIRAE', '10.0.0.4');
      expect(decision.allowed, 'PAIRAE from elsewhere').toBe(false);
      expect(decision.reason, 'PAIRAE from elsewhere: reason lists both hosts').toContain('(10.0.0.2, 10.0.0.3 expected');
    });

    it('still refuses an unlisted modality from its own host', () => {
      expect(decide(hostCheck, 'WS2AE', '10.0.0.1').allowed, 'ws2 from its host').toBe(false);
    });
  });
});
