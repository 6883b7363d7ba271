// Orthanc.find over a fake NativeBridge: which /tools/find it sends, depending on what
// GET /system says of the index (Capabilities.HasExtendedFind).
import { describe, expect, it } from 'vitest';
import type { NativeBridge } from '../../src/native.js';
import { Orthanc, type FindRequest } from '../../src/orthanc.js';

type Call = { method: 'GET'; uri: string } | { method: 'POST'; uri: string; body: unknown };

/** A bridge that answers GET /system with `system` (or fails it), and every POST with `[]`. */
function fakeBridge(system: () => unknown) {
  const calls: Call[] = [];
  const bridge: NativeBridge = {
    async restGet(uri) {
      calls.push({ method: 'GET', uri });
      if (uri !== '/system') throw new Error(`unexpected GET ${uri}`);
      return Buffer.from(JSON.stringify(system()));
    },
    async restPost(uri, body) {
      calls.push({ method: 'POST', uri, body: JSON.parse(body.toString()) });
      return Buffer.from('[]');
    },
    async restPut(uri) {
      throw new Error(`unexpected PUT ${uri}`);
    },
    async restDelete(uri) {
      throw new Error(`unexpected DELETE ${uri}`);
    },
    getConfiguration: () => '{}',
    applyServers: async () => [],
    getGlobalProperty: async () => '',
    setGlobalProperty: async () => {},
    getConfigurationPath: () => null,
    log: () => {},
    storeActivity: () => ({ inProgress: false, lastBegun: 0, now: 0 }),
    setDispatcher: () => {},
  };
  return { bridge, calls };
}

const failing = () => {
  throw Object.assign(new Error('Unknown resource'), { orthancCode: 17 });
};

const expanded: FindRequest = {
  Level: 'Study',
  Query: { '0010,0020': 'abc*' },
  Labels: ['a'],
  LabelsConstraint: 'All',
  Expand: true,
  Short: true,
  CaseSensitive: true,
  RequestedTags: ['0010,0020', '0020,000d'],
};

const { Expand: _expand, ...withoutExpand } = expanded;
const withResponseContent = { ...withoutExpand, ResponseContent: ['RequestedTags'] };

const systemGet: Call = { method: 'GET', uri: '/system' };
const findPost = (body: unknown): Call => ({ method: 'POST', uri: '/tools/find', body });

describe('Orthanc.find', () => {
  it('asks for ResponseContent ["RequestedTags"] instead of Expand when the index has ExtendedFind', async () => {
    const { bridge, calls } = fakeBridge(() => ({ Version: '1.12.7', Capabilities: { HasExtendedFind: true } }));
    expect(await Orthanc.connect(bridge).find(expanded)).toStrictEqual([]);
    expect(calls).toStrictEqual([systemGet, findPost(withResponseContent)]);
    expect(calls[1]).not.toHaveProperty('body.Expand');
  });

  it('keeps Expand when the index has no ExtendedFind', async () => {
    const { bridge, calls } = fakeBridge(() => ({ Capabilities: { HasExtendedFind: false } }));
    await Orthanc.connect(bridge).find(expanded);
    expect(calls).toStrictEqual([systemGet, findPost(expanded)]);
  });

  it('keeps Expand when /system says nothing of ExtendedFind (Orthanc before 1.12.5)', async () => {
    const { bridge, calls } = fakeBridge(() => ({ Version: '1.12.4' }));
    await Orthanc.connect(bridge).find(expanded);
    expect(calls).toStrictEqual([systemGet, findPost(expanded)]);
  });

  it('keeps Expand when HasExtendedFind is not exactly true', async () => {
    const { bridge, calls } = fakeBridge(() => ({ Capabilities: { HasExtendedFind: 'true' } }));
    await Orthanc.connect(bridge).find(expanded);
    expect(calls).toStrictEqual([systemGet, findPost(expanded)]);
  });

  it('keeps Expand when GET /system fails, and asks /system again on the next find', async () => {
    let fails = true;
    const { bridge, calls } = fakeBridge(() => (fails ? failing() : { Capabilities: { HasExtendedFind: true } }));
    const orthanc = Orthanc.connect(bridge);
    await orthanc.find(expanded);
    expect(calls).toStrictEqual([systemGet, findPost(expanded)]);
    fails = false;
    await orthanc.find(expanded);
    expect(calls).toStrictEqual([systemGet, findPost(expanded), systemGet, findPost(withResponseContent)]);
  });

  it('keeps Expand when /system answers something that is not JSON', async () => {
    const { bridge, calls } = fakeBridge(() => undefined);
    bridge.restGet = async (uri) => {
      calls.push({ method: 'GET', uri });
      return Buffer.from('not json');
    };
    await Orthanc.connect(bridge).find(expanded);
    expect(calls).toStrictEqual([systemGet, findPost(expanded)]);
  });

  it('asks /system once, after it answered, however many finds follow', async () => {
    let answers = 0;
    const { bridge, calls } = fakeBridge(() => {
      answers += 1;
      return { Capabilities: { HasExtendedFind: true } };
    });
    const orthanc = Orthanc.connect(bridge);
    await orthanc.find(expanded);
    await orthanc.find(expanded);
    await orthanc.find({ ...expanded, Level: 'Instance' });
    expect(answers).toBe(1);
    expect(calls).toStrictEqual([
      systemGet,
      findPost(withResponseContent),
      findPost(withResponseContent),
      findPost({ ...withResponseContent, Level: 'Instance' }),
    ]);
  });

  it('asks /system once for concurrent finds', async () => {
    const { bridge, calls } = fakeBridge(() => ({ Capabilities: { HasExtendedFind: true } }));
    const orthanc = Orthanc.connect(bridge);
    await Promise.all([orthanc.find(expanded), orthanc.find(expanded), orthanc.find(expanded)]);
    expect(calls.filter((call) => call.method === 'GET')).toStrictEqual([systemGet]);
    expect(calls.filter((call) => call.method === 'POST')).toStrictEqual([
      findPost(withResponseContent),
      findPost(withResponseContent),
      findPost(withResponseContent),
    ]);
  });

  it('also remembers that the index has no ExtendedFind', async () => {
    const { bridge, calls } = fakeBridge(() => ({ Capabilities: { HasExtendedFind: false } }));
    const orthanc = Orthanc.connect(bridge);
    await orthanc.find(expanded);
    await orthanc.find(expanded);
    expect(calls).toStrictEqual([systemGet, findPost(expanded), findPost(expanded)]);
  });

  it('leaves a find without Expand or without RequestedTags as it is, without asking /system', async () => {
    const { bridge, calls } = fakeBridge(() => ({ Capabilities: { HasExtendedFind: true } }));
    const orthanc = Orthanc.connect(bridge);
    const { RequestedTags: _tags, ...withoutRequestedTags } = expanded;
    await orthanc.find(withoutExpand);
    await orthanc.find(withoutRequestedTags);
    expect(calls).toStrictEqual([findPost(withoutExpand), findPost(withoutRequestedTags)]);
  });

  it('pages with ResponseContent when Orthanc caps its answers', async () => {
    const { bridge, calls } = fakeBridge(() => ({ Capabilities: { HasExtendedFind: true } }));
    const pages = [[{ ID: '1' }, { ID: '2' }], [{ ID: '3' }]];
    bridge.restPost = async (uri, body) => {
      calls.push({ method: 'POST', uri, body: JSON.parse(body.toString()) });
      return Buffer.from(JSON.stringify(pages.shift() ?? []));
    };
    const orthanc = Orthanc.connect(bridge);
    orthanc.setFindLimits(2, 0);
    expect(await orthanc.find(expanded)).toStrictEqual([{ ID: '1' }, { ID: '2' }, { ID: '3' }]);
    expect(calls).toStrictEqual([
      systemGet,
      findPost({ ...withResponseContent, Limit: 2, Since: 0 }),
      findPost({ ...withResponseContent, Limit: 2, Since: 2 }),
    ]);
  });
});
