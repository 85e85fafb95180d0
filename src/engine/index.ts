/** Opens an index engine instance of a given kind. */
import type { Engine, EngineKind, EngineOptions } from './types.js';
import { unreachable } from '../lib/assert.js';

export * from './types.js';

export async function openEngine(
  kind: EngineKind,
  dir: string,
  options: EngineOptions = {},
): Promise<Engine> {
  switch (kind) {
    case 'btree': {
      const { LmdbEngine } = await import('./lmdb.js');
      return LmdbEngine.open(dir, options);
    }
    case 'lsm': {
      const { LevelEngine } = await import('./level.js');
      return LevelEngine.open(dir, options);
    }
    default:
      return unreachable(kind, 'engine kind');
  }
}
