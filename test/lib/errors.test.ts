import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorCodes, TesseraError } from '../../src/lib/errors.js';

function documentedCodes(): Map<string, number> {
  const text = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, number>();
  for (const m of text.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)) rows.set(m[1]!, Number(m[2]));
  return rows;
}

describe('error codes', () => {
  it('every registered code is documented with the same status, and every documented code exists', () => {
    const documented = documentedCodes();
    const registered = new Map(Object.entries(errorCodes).map(([code, v]) => [code, v.status as number]));
    expect([...documented.keys()].sort()).toEqual([...registered.keys()].sort());
    for (const [code, status] of registered) expect(documented.get(code)).toBe(status);
  });

  it('serializes as {"error":{"code","message"}} with its status', () => {
    const e = new TesseraError('TABLE_NOT_FOUND', 'no table t', { table: 't' });
    expect(e.status).toBe(404);
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      error: { code: 'TABLE_NOT_FOUND', message: 'no table t', table: 't' },
    });
  });
});
