/**
 * `require` for npm packages that works the same in node and in tslab.
 *
 * tslab hooks `require` in the .ts files it compiles and first looks a module id up among its own
 * outputs as a path relative to the importing file: `require('vega')` inside `lib/plot/vega.ts`
 * would return `lib/plot/vega.ts` itself. A require made by `createRequire` is not hooked.
 */
import { createRequire } from 'module';

const nodeRequire = createRequire(__filename);

export function requirePackage<T>(id: string): T {
  return nodeRequire(id) as T;
}

export function resolvePackage(id: string): string {
  return nodeRequire.resolve(id);
}
