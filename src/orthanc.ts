// Orthanc as the TypeScript side sees it: in-process REST calls (never HTTP) and the
// log, over the native SDK bridge. A DICOM request works through a scoped view
// (`within`): its calls stop at the request's deadline, and only a few of them run at
// once, so that one large request cannot fill the thread pool that every tenant shares.
import pLimit, { type LimitFunction } from 'p-limit';
import { URI_PREFIX, type ResourceLevel } from './dicom.js';
import type { NativeBridge } from './native.js';

/** A /tools/find request; `Level` decides which of Orthanc's limits caps its answer. */
export interface FindRequest {
  Level: ResourceLevel;
  Query: Record<string, string>;
  Labels?: string[];
  LabelsConstraint?: 'All' | 'Any' | 'None';
  CaseSensitive?: boolean;
  Expand?: boolean;
  Short?: boolean;
  RequestedTags?: string[];
  /** Orthanc >= 1.12.5 (supportsExtendedFind): only the descendants of this patient. */
  ParentPatient?: string;
  /** Orthanc >= 1.12.5 (supportsExtendedFind): what each answer holds, instead of Expand. */
  ResponseContent?: string[];
}

/**
 * Up to this many patients, a request looks at them one by one (by Orthanc identifier,
 * under each patient); beyond, by /tools/find over lists of PatientIDs, which costs a
 * pass over the index whatever the list's length.
 */
export const FEW_PATIENTS = 16;

/** How many REST calls of one DICOM request run at once. */
export const REQUEST_CONCURRENCY = 4;

/** The request's caller gave up (DicomScpTimeout): its remaining work is dropped. */
export class DeadlineExceededError extends Error {
  constructor(readonly uri: string) {
    super(`the request's deadline passed before ${uri}`);
    this.name = 'DeadlineExceededError';
  }
}

/** What GET /system says that matters here. */
interface SystemFacts {
  /** /tools/find takes ParentPatient and ResponseContent (the index has ExtendedFind). */
  extendedFind: boolean;
  /** The index is Orthanc's built-in SQLite ("DatabaseBackendPlugin": null). */
  builtInIndex: boolean;
}

/** Process-wide state that every view shares: Orthanc's find limits and capabilities. */
class Shared {
  findLimits = { results: 0, instances: 0 };
  system: Promise<SystemFacts> | undefined;
}

export class Orthanc {
  private constructor(
    private readonly bridge: NativeBridge,
    private readonly shared: Shared,
    private readonly deadline: number | undefined,
    private readonly limit: LimitFunction | undefined,
  ) {}

  static connect(bridge: NativeBridge): Orthanc {
    return new Orthanc(bridge, new Shared(), undefined, undefined);
  }

  /**
   * The view of one DICOM request: each call first checks `deadline` (ms since the
   * epoch, as Date.now()), and at most REQUEST_CONCURRENCY of its calls run at once.
   */
  within(deadline: number | undefined): Orthanc {
    return new Orthanc(this.bridge, this.shared, deadline, pLimit(REQUEST_CONCURRENCY));
  }

  /** Orthanc's LimitFindResults and LimitFindInstances, which also cap /tools/find. */
  setFindLimits(results: number, instances: number): void {
    this.shared.findLimits = { results, instances };
  }

  /**
   * Every match of a /tools/find, page after page when Orthanc caps its answers. Orthanc
   * refuses to page a request that involves tags outside its index: then this throws a
   * CappedFindError holding the first page.
   */
  async find<T>(original: FindRequest): Promise<T[]> {
    const request = await this.cheapestForm(original);
    const pageSize = this.findLimitOf(request);
    if (pageSize === 0) return this.postJson<T[]>('/tools/find', request);
    return this.pages<T>(request, pageSize, () => false);
  }

  /** Every match of a /tools/find when there are at most `count`; undefined when there are more. */
  async findAtMost<T>(original: FindRequest, count: number): Promise<T[] | undefined> {
    const request = await this.cheapestForm(original);
    const limit = this.findLimitOf(request);
    const all = await this.pages<T>(request, limit === 0 ? count + 1 : Math.min(limit, count + 1), (found) => found.length > count);
    return all.length > count ? undefined : all;
  }

  /** The pages of a /tools/find until its last one, or until `enough` of what was found. */
  private async pages<T>(request: FindRequest, pageSize: number, enough: (found: T[]) => boolean): Promise<T[]> {
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
      if (page.length < pageSize || enough(all)) return all;
    }
  }

  /** Orthanc's cap on this request's answers (LimitFindInstances or LimitFindResults; 0: none). */
  private findLimitOf(request: FindRequest): number {
    return request.Level === 'Instance' ? this.shared.findLimits.instances : this.shared.findLimits.results;
  }

  /**
   * An expanded /tools/find builds every resource's whole description. When the index
   * supports "ResponseContent" (Orthanc >= 1.12.5 with "HasExtendedFind"), a request
   * that reads only the requested tags asks for just those: the same answers, in about
   * half the time. (Their labels would cost Orthanc a read per answer: a request that
   * needs them asks ResponseContent itself.)
   */
  private async cheapestForm(request: FindRequest): Promise<FindRequest> {
    if (request.Expand !== true || request.RequestedTags === undefined || !(await this.supportsExtendedFind())) return request;
    const { Expand: _expand, ...rest } = request;
    return { ...rest, ResponseContent: ['RequestedTags'] };
  }

  /** Whether /tools/find takes ParentPatient and ResponseContent (the index has ExtendedFind). */
  async supportsExtendedFind(): Promise<boolean> {
    return (await this.systemFacts()).extendedFind;
  }

  /**
   * Whether the index is Orthanc's built-in SQLite: Orthanc opens it with an exclusive
   * lock, so this process is the only one that writes it (no cluster shares it).
   */
  async hasBuiltInIndex(): Promise<boolean> {
    return (await this.systemFacts()).builtInIndex;
  }

  private systemFacts(): Promise<SystemFacts> {
    type System = { Capabilities?: { HasExtendedFind?: boolean }; DatabaseBackendPlugin?: unknown };
    this.shared.system ??= this.getJson<System>('/system').then(
      (system) => ({ extendedFind: system.Capabilities?.HasExtendedFind === true, builtInIndex: system.DatabaseBackendPlugin === null }),
      () => {
        this.shared.system = undefined; // asked again next time
        return { extendedFind: false, builtInIndex: false };
      },
    );
    return this.shared.system;
  }

  /** The labels of a resource, or undefined when Orthanc does not hold it. */
  async labelsOf(level: ResourceLevel, resourceId: string): Promise<string[] | undefined> {
    return this.unlessUnknown(this.getJson<string[]>(`${URI_PREFIX[level]}${resourceId}/labels`));
  }

  /** A GET that answers undefined for a resource Orthanc does not hold. */
  async getJsonIfExists<T = unknown>(uri: string): Promise<T | undefined> {
    return this.unlessUnknown(this.getJson<T>(uri));
  }

  async getJson<T = unknown>(uri: string): Promise<T> {
    return parseJson<T>(uri, await this.call(uri, () => this.bridge.restGet(uri)));
  }

  async getText(uri: string): Promise<string> {
    return (await this.call(uri, () => this.bridge.restGet(uri))).toString('utf8');
  }

  async postJson<T = unknown>(uri: string, body: unknown): Promise<T> {
    return parseJson<T>(uri, await this.call(uri, () => this.bridge.restPost(uri, JSON.stringify(body))));
  }

  /** A POST of a raw body (not JSON), answered in JSON. */
  async postRawForJson<T = unknown>(uri: string, body: string): Promise<T> {
    return parseJson<T>(uri, await this.call(uri, () => this.bridge.restPost(uri, body)));
  }

  /** A POST whose answer does not matter. */
  async post(uri: string, body: unknown): Promise<void> {
    await this.call(uri, () => this.bridge.restPost(uri, JSON.stringify(body)));
  }

  async put(uri: string, body: Buffer | string = ''): Promise<void> {
    await this.call(uri, () => this.bridge.restPut(uri, body));
  }

  async delete(uri: string): Promise<void> {
    await this.call(uri, () => this.bridge.restDelete(uri));
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

  private call<T>(uri: string, run: () => Promise<T>): Promise<T> {
    const checked = () => {
      if (this.deadline !== undefined && Date.now() >= this.deadline) throw new DeadlineExceededError(uri);
      return run();
    };
    return this.limit === undefined ? checked() : this.limit(checked);
  }

  private async unlessUnknown<T>(answer: Promise<T>): Promise<T | undefined> {
    try {
      return await answer;
    } catch (error) {
      if (orthancErrorCode(error) === OrthancErrorCode.UnknownResource) return undefined;
      throw error;
    }
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

/** A short description of a thrown value, for log lines. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
