/**
 * The registered functions as the host sees them: trigger type, HTTP route, timer schedule,
 * disabled flag, and "in error" state (a function in error is listed but never runs, as in func).
 */
import { isFunctionDisabled } from './appSettings';
import type { RegisteredFunction } from './coreModule';
import type { RpcBindingInfo } from './coreTypes';
import { RouteTable } from './routes';
import { effectiveUseMonitor, parseSchedule, resolveSettingReferences, type Schedule } from './schedule';

export interface HostFunction {
  name: string;
  triggerType: string;
  trigger: RpcBindingInfo;
  registered: RegisteredFunction;
  disabled: boolean;
  error?: string;
  http?: { route: string; methods: string[]; authLevel: string };
  timer?: { schedule: string; parsed?: Schedule; runOnStartup: boolean; useMonitor: boolean };
  queue?: { queueName: string; connection: string };
}

export interface FunctionInfo {
  name: string;
  triggerType: string;
  isDisabled: boolean;
  error?: string;
  url?: string;
  methods?: string[];
  route?: string;
  schedule?: string;
  queueName?: string;
  invokeUrl?: string;
}

function triggerOf(fn: RegisteredFunction): RpcBindingInfo {
  const binding = Object.values(fn.metadata.bindings).find(
    (b) => b.direction === 'in' && typeof b.type === 'string' && b.type.toLowerCase().endsWith('trigger'),
  );
  if (!binding) throw new Error(`Function '${fn.metadata.name}' has no trigger binding.`);
  return binding;
}

export class FunctionCatalog {
  readonly functions: HostFunction[] = [];
  readonly routes = new RouteTable<HostFunction>();

  constructor(
    registered: Iterable<RegisteredFunction>,
    env: NodeJS.ProcessEnv,
    nowMs: number,
    private readonly routePrefix: string,
  ) {
    const timezone = env.WEBSITE_TIME_ZONE;
    for (const reg of registered) {
      const trigger = triggerOf(reg);
      const triggerType = String(trigger.type);
      const fn: HostFunction = {
        name: reg.metadata.name,
        triggerType,
        trigger,
        registered: reg,
        disabled: isFunctionDisabled(reg.metadata.name, env),
      };
      const type = triggerType.toLowerCase();
      try {
        if (type === 'httptrigger') {
          const route = typeof trigger.route === 'string' && trigger.route.trim() !== '' ? trigger.route : fn.name;
          const methods = Array.isArray(trigger.methods) && trigger.methods.length > 0 ? trigger.methods.map((m) => String(m).toUpperCase()) : ['GET', 'POST'];
          fn.http = { route, methods, authLevel: String(trigger.authLevel ?? 'anonymous') };
          if (!fn.disabled) this.routes.add(route, methods, fn);
        } else if (type === 'queuetrigger') {
          const queueName = resolveSettingReferences(String(trigger.queueName ?? ''), env);
          if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(queueName)) throw new Error(`'${queueName}' is not a valid queue name.`);
          fn.queue = { queueName, connection: typeof trigger.connection === 'string' && trigger.connection !== '' ? trigger.connection : 'AzureWebJobsStorage' };
        } else if (type === 'timertrigger') {
          const schedule = String(trigger.schedule ?? '');
          fn.timer = { schedule, runOnStartup: trigger.runOnStartup === true, useMonitor: true };
          const parsed = parseSchedule(resolveSettingReferences(schedule, env), timezone ? { timezone } : {});
          fn.timer.parsed = parsed;
          fn.timer.useMonitor = effectiveUseMonitor(parsed, typeof trigger.useMonitor === 'boolean' ? trigger.useMonitor : undefined, nowMs);
        }
      } catch (err) {
        fn.error = (err as Error).message;
      }
      this.functions.push(fn);
    }
  }

  find(name: string): HostFunction | undefined {
    const lower = name.toLowerCase();
    return this.functions.find((f) => f.name.toLowerCase() === lower);
  }

  httpUrl(baseUrl: string, fn: HostFunction): string | undefined {
    if (!fn.http) return undefined;
    const path = [this.routePrefix, fn.http.route.replace(/^~?\/+/, '')].filter((p) => p !== '').join('/');
    return `${baseUrl}/${path}`;
  }

  info(baseUrl: string): FunctionInfo[] {
    return this.functions.map((fn) => {
      const info: FunctionInfo = { name: fn.name, triggerType: fn.triggerType, isDisabled: fn.disabled };
      if (fn.error) info.error = fn.error;
      if (fn.http) {
        info.url = this.httpUrl(baseUrl, fn) as string;
        info.methods = fn.http.methods;
        info.route = fn.http.route;
      } else {
        info.invokeUrl = `${baseUrl}/admin/functions/${fn.name}`;
      }
      if (fn.timer) info.schedule = fn.timer.schedule;
      if (fn.queue) info.queueName = fn.queue.queueName;
      return info;
    });
  }

  /** One console line per function, like func's "Functions:" listing. */
  describe(baseUrl: string, fn: HostFunction): string {
    const suffix = fn.error ? ' (in error)' : fn.disabled ? ' (disabled)' : '';
    if (fn.http) return `${fn.name}: [${fn.http.methods.join(',')}] ${this.httpUrl(baseUrl, fn)}${suffix}`;
    if (fn.timer) return `${fn.name}: timerTrigger (${fn.timer.schedule})${suffix}`;
    if (fn.queue) return `${fn.name}: queueTrigger (queue '${fn.queue.queueName}', connection ${fn.queue.connection})${suffix}`;
    if (fn.triggerType.toLowerCase() === 'eventgridtrigger') {
      return `${fn.name}: eventGridTrigger ${baseUrl}/runtime/webhooks/EventGrid?functionName=${fn.name}${suffix}`;
    }
    return `${fn.name}: ${fn.triggerType}${suffix}`;
  }
}
