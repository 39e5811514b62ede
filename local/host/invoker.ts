/**
 * Runs one invocation through the library's own pipeline, in the order of the worker's
 * InvocationHandler: getInvocationModel → getArguments → preInvocation hooks →
 * invokeFunction → postInvocation hooks → getResponse. Writes func's Executing/Executed lines.
 */
import { randomUUID } from 'node:crypto';
import type { CoreRegistry, RegisteredFunction } from './coreModule';
import type { CoreInvocationContext, RpcInvocationResponse, RpcTypedData } from './coreTypes';
import type { HostLogger, InvocationLogContext } from './hostLogger';

export interface InvokeRequest {
  fn: RegisteredFunction;
  triggerData: RpcTypedData;
  triggerMetadata?: Record<string, RpcTypedData>;
  reason: string;
}

export type InvokeResult =
  | { ok: true; invocationId: string; response: RpcInvocationResponse }
  | { ok: false; invocationId: string; error: unknown };

function triggerBindingName(fn: RegisteredFunction): string {
  for (const [name, binding] of Object.entries(fn.metadata.bindings)) {
    if (binding.direction === 'in' && typeof binding.type === 'string' && binding.type.toLowerCase().endsWith('trigger')) return name;
  }
  throw new Error(`Function '${fn.metadata.name}' has no trigger binding.`);
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}

export class Invoker {
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly registry: CoreRegistry,
    private readonly logger: HostLogger,
  ) {}

  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  /** Resolves when running invocations finish, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.#inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#inFlight]),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  invoke(request: InvokeRequest): Promise<InvokeResult> {
    const run = this.#run(request);
    this.#inFlight.add(run);
    void run.finally(() => this.#inFlight.delete(run));
    return run;
  }

  async #run(request: InvokeRequest): Promise<InvokeResult> {
    const { fn } = request;
    const name = fn.metadata.name;
    const invocationId = randomUUID();
    const started = process.hrtime.bigint();
    this.logger.info(`Executing 'Functions.${name}' (Reason='${request.reason}', Id=${invocationId})`);

    const hookData: Record<string, unknown> = {};
    const logCtx: InvocationLogContext = { hookData, invocationContext: undefined };
    const coreCtx: CoreInvocationContext = {
      invocationId,
      request: {
        invocationId,
        functionId: name,
        inputData: [{ name: triggerBindingName(fn), data: request.triggerData }],
        ...(request.triggerMetadata ? { triggerMetadata: request.triggerMetadata } : {}),
        traceContext: { traceParent: `00-${randomUUID().replace(/-/g, '')}-${randomUUID().replace(/-/g, '').slice(0, 16)}-00`, traceState: '', attributes: {} },
      },
      metadata: fn.metadata,
      state: undefined,
      log: (level, category, message) => this.logger.coreLog(level, category, message, logCtx),
    };

    const done = (ok: boolean): string => {
      const ms = Number((process.hrtime.bigint() - started) / 1_000_000n);
      return `Executed 'Functions.${name}' (${ok ? 'Succeeded' : 'Failed'}, Id=${invocationId}, Duration=${ms}ms)`;
    };

    try {
      const model = this.registry.programmingModel;
      if (!model) throw new Error('The app registered functions without a programming model.');
      const invocModel = await model.getInvocationModel(coreCtx);
      const { context, inputs: initialInputs } = await invocModel.getArguments();
      logCtx.invocationContext = context;
      const appHookData = this.logger.appHookData;

      // Hooks see these read-only, as the worker gives them.
      const hookContext = <T extends object>(fields: T) =>
        Object.assign(
          {
            get hookData() {
              return hookData;
            },
            get appHookData() {
              return appHookData;
            },
            get invocationContext() {
              return context;
            },
          },
          fields,
        );
      const preCtx = hookContext({ functionCallback: fn.callback, inputs: initialInputs });
      coreCtx.state = 'preInvocationHooks';
      try {
        for (const hook of this.registry.hooks.preInvocation) await hook(preCtx);
      } finally {
        coreCtx.state = undefined;
      }

      const postCtx = hookContext({ inputs: preCtx.inputs, result: null as unknown, error: null as unknown });
      coreCtx.state = 'invocation';
      try {
        postCtx.result = await invocModel.invokeFunction(context, preCtx.inputs, preCtx.functionCallback);
      } catch (err) {
        postCtx.error = err;
      } finally {
        coreCtx.state = undefined;
      }

      coreCtx.state = 'postInvocationHooks';
      try {
        for (const hook of this.registry.hooks.postInvocation) await hook(postCtx);
      } finally {
        coreCtx.state = undefined;
      }

      // Like the worker: a hook may clear the error; anything still set fails the invocation.
      if (postCtx.error !== null && postCtx.error !== undefined) throw postCtx.error;
      const response = await invocModel.getResponse(context, postCtx.result);
      this.logger.info(done(true));
      return { ok: true, invocationId, response };
    } catch (error) {
      this.logger.info(done(false));
      this.logger.error(`Exception while executing function: Functions.${name}. Result: Failure\n${errorText(error)}`);
      return { ok: false, invocationId, error };
    }
  }
}
