import { describe, expect, it } from 'vitest';
import { runAll } from '../../src/lib/run-all.js';

describe('runAll', () => {
  it('runs every step in order although some fail, then throws the first failure', async () => {
    const ran: string[] = [];
    const step = (name: string, fail?: unknown) => async () => {
      ran.push(name);
      if (fail !== undefined) throw fail;
    };
    await expect(
      runAll([step('a'), step('b', new Error('first')), step('c', new Error('second')), step('d')]),
    ).rejects.toThrow('first');
    expect(ran).toEqual(['a', 'b', 'c', 'd']);
  });

  it('resolves when every step does, and rethrows a failure that is not an Error as it is', async () => {
    await expect(runAll([async () => 1, async () => 2])).resolves.toBeUndefined();
    await expect(runAll([async () => Promise.reject(0)])).rejects.toBe(0);
  });
});
