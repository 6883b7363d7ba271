// The typed surface of the native SDK bridge (native/sdk_bridge.cpp).
// Inside Orthanc it is a linked binding of the embedded Node runtime; in plain Node
// (unit tests) the same bridge is built by binding.gyp as build/Release/sdk_bridge.node.

import type { ServerSpec, ServerState } from './bridge.js';

export type LogLevel = 'info' | 'warning' | 'error';

/** Rejection of a REST call: Orthanc's error code and its description. */
export interface OrthancRestError extends Error {
  orthancCode: number;
}

/**
 * A call from one of Orthanc's threads into JS: `kind` is one of bridge.ts's KINDS and
 * `args` its arguments. The handler's result (or the value its promise resolves to) goes
 * back to C++.
 */
export type Dispatcher = (kind: string, args: unknown) => unknown;

export interface NativeBridge {
  restGet(uri: string): Promise<Buffer>;
  restPost(uri: string, body: Buffer | string): Promise<Buffer>;
  restPut(uri: string, body: Buffer | string): Promise<Buffer>;
  restDelete(uri: string): Promise<void>;
  /** Orthanc's whole configuration, as JSON text. */
  getConfiguration(): string;
  log(level: LogLevel, message: string): void;
  /**
   * Makes the running tenant servers exactly these (started, stopped, reopened when their
   * port or TLS changed, updated in place otherwise); resolves with each one's state.
   */
  applyServers(specs: ServerSpec[]): Promise<ServerState[]>;
  /**
   * A global property of Orthanc's database ("" when never set). Orthanc files it under the
   * server's DatabaseServerIdentifier: the nodes of a cluster do not share it.
   */
  getGlobalProperty(property: number): Promise<string>;
  setGlobalProperty(property: number, value: string): Promise<void>;
  /** The configuration file (or folder) Orthanc was started with. */
  getConfigurationPath(): string | null;
  /** The C-STOREs of this process into this patient (by Orthanc identifier): stored, not yet labelled. */
  storeActivity(patientId: string): StoreActivity;
  setDispatcher(dispatcher: Dispatcher): void;
}

export interface StoreActivity {
  /** A C-STORE of this process is writing into the patient. */
  inProgress: boolean;
  /** When the last store into it began, as a count of stores begun by this process (0: none remembered). */
  lastBegun: number;
  /** That count now. */
  now: number;
}
