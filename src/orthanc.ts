// Orthanc as the TypeScript side sees it: in-process REST calls (never HTTP) and
// the log, over the native SDK bridge.
import type { ResourceLevel } from './configuration.js';
import type { NativeBridge } from './native.js';

/** A /tools/find request; `Level` decides which of Orthanc's limits caps its answer. */
export interface FindRequest {
  Level: 'Patient' | 'Study' | 'Series' | 'Instance';
  Query: Record<string, string>;
  Labels?: string[];
  LabelsConstraint?: 'All' | 'Any' | 'None';
  CaseSensitive?: boolean;
  Expand?: boolean;
  Short?: boolean;
  RequestedTags?: string[];
}

export class Orthanc {
  private findLimits = { results: 0, instances: 0 };

  constructor(private readonly bridge: NativeBridge) {}

  /** Orthanc's LimitFindResults and LimitFindInstances, which also cap /tools/find. */
  setFindLimits(results: number, instances: number): void {
    this.findLimits = { results, instances };
  }

  /**
   * Every match of a /tools/find, page after page when Orthanc caps its answers. Orthanc
   * refuses to page a request that involves tags outside its index: then this throws a
   * CappedFindError holding the first page.
   */
  async find<T>(original: FindRequest): Promise<T[]> {
    const request = await this.cheapestForm(original);
    const pageSize = request.Level === 'Instance' ? this.findLimits.instances : this.findLimits.results;
    if (pageSize === 0) return this.postJson<T[]>('/tools/find', request);
    const all: T[] = [];
    for (;;) {
      let page: T[];
      try {
        page = await this.postJson<T[]>('/tools/find', { ...request, Limit: pageSize, Since: all.length });
      } catch (error) {
        if (all.length === 0 || orthancErrorCode(error) !== OrthancErrorCode.BadRequest) throw error;
        throw new CappedFindError(all, pageSize);
      }
      all.push(...page);
      if (page.length < pageSize) return all;
    }
  }

  /**
   * An expanded /tools/find builds every resource's whole description. When the index
   * supports "ResponseContent" (Orthanc >= 1.12.5 with "HasExtendedFind"), a request
   * that reads only the requested tags asks for just those: the same answers, in about
   * half the time.
   */
  private async cheapestForm(request: FindRequest): Promise<FindRequest | (Omit<FindRequest, 'Expand'> & { ResponseContent: string[] })> {
    if (request.Expand !== true || request.RequestedTags === undefined || !(await this.hasExtendedFind())) return request;
    const { Expand: _expand, ...rest } = request;
    return { ...rest, ResponseContent: ['RequestedTags'] };
  }

  private extendedFind: Promise<boolean> | undefined;

  private hasExtendedFind(): Promise<boolean> {
    this.extendedFind ??= this.getJson<{ Capabilities?: { HasExtendedFind?: boolean } }>('/system').then(
      (system) => system.Capabilities?.HasExtendedFind === true,
      () => {
        this.extendedFind = undefined; // asked again next time
        return false;
      },
    );
    return this.extendedFind;
  }

  /** The labels of a resource, or undefined when Orthanc does not hold it. */
  async labelsOf(level: ResourceLevel, resourceId: string): Promise<string[] | undefined> {
    try {
      return await this.getJson<string[]>(`${URI_PREFIX[level]}${resourceId}/labels`);
    } catch (error) {
      if (orthancErrorCode(error) === OrthancErrorCode.UnknownResource) return undefined;
      throw error;
    }
  }

  async getJson<T = unknown>(uri: string): Promise<T> {
    return parseJson<T>(uri, await this.bridge.restGet(uri));
  }

  async getText(uri: string): Promise<string> {
    return (await this.bridge.restGet(uri)).toString('utf8');
  }

  async postJson<T = unknown>(uri: string, body: unknown): Promise<T> {
    return parseJson<T>(uri, await this.bridge.restPost(uri, JSON.stringify(body)));
  }

  /** POST of raw bytes (a DICOM file), answered in JSON. */
  async postBytes<T = unknown>(uri: string, body: Buffer): Promise<T> {
    return parseJson<T>(uri, await this.bridge.restPost(uri, body));
  }

  async put(uri: string, body: Buffer | string = ''): Promise<void> {
    await this.bridge.restPut(uri, body);
  }

  async delete(uri: string): Promise<void> {
    await this.bridge.restDelete(uri);
  }

  configuration(): Record<string, unknown> {
    return JSON.parse(this.bridge.getConfiguration()) as Record<string, unknown>;
  }

  info(message: string): void {
    this.bridge.log('info', message);
  }

  warning(message: string): void {
    this.bridge.log('warning', message);
  }

  error(message: string): void {
    this.bridge.log('error', message);
  }
}

/** A /tools/find that Orthanc capped at LimitFindResults or LimitFindInstances, and cannot page. */
export class CappedFindError<T = unknown> extends Error {
  constructor(
    readonly firstPage: T[],
    readonly limit: number,
  ) {
    super(`Orthanc caps this /tools/find at ${limit} answers (LimitFindResults or LimitFindInstances) and cannot page it`);
  }
}

/** Orthanc's error code on a failed REST call (OrthancPluginErrorCode), if any. */
export function orthancErrorCode(error: unknown): number | undefined {
  const code = (error as { orthancCode?: unknown } | null)?.orthancCode;
  return typeof code === 'number' ? code : undefined;
}

export const URI_PREFIX: Record<ResourceLevel, string> = {
  Patient: '/patients/',
  Study: '/studies/',
  Series: '/series/',
  Instance: '/instances/',
};

export const OrthancErrorCode = {
  BadRequest: 8,
  BadFileFormat: 15,
  UnknownResource: 17,
  FullStorage: 19,
} as const;

function parseJson<T>(uri: string, body: Buffer): T {
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch {
    throw new Error(`${uri}: Orthanc's answer is not JSON`);
  }
}
