// Orthanc as the TypeScript side sees it: in-process REST calls (never HTTP) and
// the log, over the native SDK bridge.
import type { NativeBridge } from './native.js';

export class Orthanc {
  constructor(private readonly bridge: NativeBridge) {}

  async getJson<T = unknown>(uri: string): Promise<T> {
    return parseJson<T>(uri, await this.bridge.restGet(uri));
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

/** Orthanc's error code on a failed REST call (OrthancPluginErrorCode), if any. */
export function orthancErrorCode(error: unknown): number | undefined {
  const code = (error as { orthancCode?: unknown } | null)?.orthancCode;
  return typeof code === 'number' ? code : undefined;
}

export const OrthancErrorCode = {
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
