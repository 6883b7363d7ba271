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

function parseJson<T>(uri: string, body: Buffer): T {
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch {
    throw new Error(`${uri}: Orthanc's answer is not JSON`);
  }
}
