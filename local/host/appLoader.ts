/**
 * Loads the app the way the Node.js worker does: core module first, then every file
 * that package.json `main` (a glob) names, then the library's capabilities (which locks `app.setup`).
 */
import { relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readMainGlob } from './appSettings';
import { activateRegistry, CoreRegistry, deactivateRegistry, installCoreModule } from './coreModule';
import type { ProgrammingModel } from './coreTypes';
import { expandGlob } from './glob';

export interface LoadedApp {
  registry: CoreRegistry;
  programmingModel: ProgrammingModel | undefined;
  files: string[];
}

export class AppLoadError extends Error {}

export async function loadApp(appDir: string, registry: CoreRegistry): Promise<LoadedApp> {
  const main = readMainGlob(appDir);
  const files = expandGlob(main, appDir);
  if (files.length === 0) {
    throw new AppLoadError(`Found zero files matching the package.json "main" pattern "${main}" in ${appDir}. Did you build the app?`);
  }

  installCoreModule();
  activateRegistry(registry);
  try {
    for (const file of files) {
      try {
        // import() loads CommonJS and ES modules alike; the library reaches the core module via require either way.
        await import(pathToFileURL(file).href);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new AppLoadError(`Worker was unable to load entry point "${relative(appDir, file)}": ${message}`);
      }
    }
    if (registry.streamingRequested) {
      throw new AppLoadError(
        'app.setup({ enableHttpStream: true }) is not supported by the local host (it needs the Functions host\'s HTTP proxy). ' +
          'Remove it, or run the app with `func start`.',
      );
    }
    const model = registry.programmingModel;
    if (model?.getCapabilities) await model.getCapabilities({});
    return { registry, programmingModel: model, files };
  } catch (err) {
    deactivateRegistry(registry);
    throw err;
  }
}
