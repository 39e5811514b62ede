/**
 * Stands in for the worker's built-in `@azure/functions-core` module, the way the real
 * Node.js worker does (`setupCoreModule.ts`): a Proxy on `Module.prototype.require`.
 * It must be installed before anything requires `@azure/functions`, because the library
 * caches a failed lookup and then stays in "test mode" (registrations dropped) for good.
 */
import Module = require('node:module');
import type {
  FunctionCallback,
  FunctionMetadata,
  HookCallback,
  HookName,
  ProgrammingModel,
  RpcLogCategory,
  RpcLogLevel,
} from './coreTypes';

export interface RegisteredFunction {
  metadata: FunctionMetadata;
  callback: FunctionCallback;
}

export type CoreLogSink = (level: RpcLogLevel, category: RpcLogCategory, message: string) => void;

const HOOK_NAMES: readonly HookName[] = ['appStart', 'appTerminate', 'preInvocation', 'postInvocation', 'log'];

/** What one loaded app registered through the core API. */
export class CoreRegistry {
  readonly functions = new Map<string, RegisteredFunction>();
  readonly hooks: Record<HookName, HookCallback[]> = {
    appStart: [],
    appTerminate: [],
    preInvocation: [],
    postInvocation: [],
    log: [],
  };
  streamingRequested = false;

  constructor(public logSink: CoreLogSink) {}

  get programmingModel(): ProgrammingModel | undefined {
    return programmingModel;
  }
}

class Disposable {
  #callOnDispose: (() => void) | undefined;
  constructor(callOnDispose: () => void) {
    this.#callOnDispose = callOnDispose;
  }
  dispose(): void {
    this.#callOnDispose?.();
    this.#callOnDispose = undefined;
  }
}

// The library sets its programming model once per process, so it outlives one registry.
let programmingModel: ProgrammingModel | undefined;
let active: CoreRegistry | undefined;
let installed = false;

function current(): CoreRegistry {
  if (!active) {
    throw new Error('The local host is not loading or running an app (no active core registry).');
  }
  return active;
}

export const coreApi = {
  version: '3.10.1',
  hostVersion: '4.1000.0',
  get programmingModel(): ProgrammingModel | undefined {
    return programmingModel;
  },
  setProgrammingModel(model: ProgrammingModel): void {
    programmingModel = model;
  },
  getProgrammingModel(): ProgrammingModel | undefined {
    return programmingModel;
  },
  registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable {
    const registry = current();
    const key = metadata.name.toLowerCase();
    if (registry.functions.has(key)) {
      throw new Error(`A function with the name "${metadata.name}" has already been registered.`);
    }
    registry.functions.set(key, { metadata, callback });
    return new Disposable(() => registry.functions.delete(key));
  },
  registerHook(hookName: string, callback: HookCallback): Disposable {
    const registry = current();
    if (!(HOOK_NAMES as readonly string[]).includes(hookName)) {
      throw new RangeError(`Unrecognized hook "${hookName}"`);
    }
    const list = registry.hooks[hookName as HookName];
    list.push(callback);
    return new Disposable(() => {
      const i = list.indexOf(callback);
      if (i >= 0) list.splice(i, 1);
    });
  },
  log(level: RpcLogLevel, category: RpcLogCategory, message: string): void {
    // app.setup() announces streaming only through this system log; the library gives no other signal.
    if (active && category === 'system' && message === 'HTTP streaming enabled.') {
      active.streamingRequested = true;
    }
    if (active) active.logSink(level, category, message);
    else if (level === 'error' || level === 'critical' || level === 'warning') console.error(message);
  },
  Disposable,
};

export function installCoreModule(): void {
  if (installed) return;
  installed = true;
  const proto = Module.prototype as unknown as { require: (id: string) => unknown };
  proto.require = new Proxy(proto.require, {
    apply(target, thisArg, argArray: unknown[]) {
      if (argArray[0] === '@azure/functions-core') return coreApi;
      return Reflect.apply(target, thisArg, argArray);
    },
  });
}

/** Makes `registry` receive registrations. One app per process: loaded modules stay cached. */
export function activateRegistry(registry: CoreRegistry): void {
  if (active && active !== registry) {
    throw new Error('Another app is already loaded in this process; the local host runs one app per process.');
  }
  active = registry;
}

export function deactivateRegistry(registry: CoreRegistry): void {
  if (active === registry) active = undefined;
}
