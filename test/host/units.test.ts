import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Descriptors, initialSnapshot } from '../../src/host/descriptor.js';
import { MemoryStateMachine, memoryCommand } from '../../src/host/memory-sm.js';
import { decodeSnapshotFrame, encodeSnapshotFrame } from '../../src/host/snapshot-stream.js';
import { groupId, logIndex, nodeId, term } from '../../src/lib/ids.js';
import { makeSeq } from '../../src/sequencer/index.js';
import { tempDirs } from '../support/tmp.js';

const tmp = tempDirs('tessera-host-unit-');

describe('group descriptors (format v1)', () => {
  it('round-trip, list, remove; refuse a corrupt or newer file', async () => {
    const ds = new Descriptors(tmp());
    await ds.init();
    const snap = {
      index: logIndex(42),
      term: term(3),
      membership: { voters: [nodeId(1), nodeId(2)], learners: [nodeId(9)] },
      highestSeq: makeSeq(123n, 4, 5),
    };
    const d = { group: groupId(7), electionMode: 'directed' as const, snapshot: snap, installing: null };
    await ds.write(d);
    await ds.write({ ...d, group: groupId(3), snapshot: initialSnapshot(snap.membership) });
    expect(await ds.list()).toEqual([3, 7]);
    expect(await ds.read(groupId(7))).toEqual(d);
    expect(await ds.read(groupId(8))).toBeUndefined();
    writeFileSync(join(ds.dir, '3.json'), '{"version":2}');
    await expect(ds.read(groupId(3))).rejects.toMatchObject({ code: 'CORRUPTION' });
    writeFileSync(join(ds.dir, '3.json'), '{not json');
    await expect(ds.read(groupId(3))).rejects.toMatchObject({ code: 'CORRUPTION' });
    await ds.remove(groupId(7));
    expect(await ds.list()).toEqual([3]);
  });
});

describe('snapshot frames (v1)', () => {
  it('round-trip and refuse malformed frames', () => {
    const f = {
      type: 'chunk' as const,
      group: groupId(9),
      index: logIndex(2 ** 40 + 5),
      number: 3,
      bytes: new Uint8Array([1, 2, 3]),
    };
    const back = decodeSnapshotFrame(encodeSnapshotFrame(f));
    expect({ ...back, bytes: [...back.bytes] }).toEqual({ ...f, bytes: [1, 2, 3] });
    const bad = encodeSnapshotFrame(f);
    bad[0] = 2;
    expect(() => decodeSnapshotFrame(bad)).toThrow(/version/);
    expect(() => decodeSnapshotFrame(new Uint8Array(5))).toThrow(/short/);
    const badType = encodeSnapshotFrame(f);
    badType[1] = 9;
    expect(() => decodeSnapshotFrame(badType)).toThrow(/type/);
  });
});

describe('memory state machine', () => {
  it('applies in order, skips replayed entries, checkpoints, snapshots and installs', async () => {
    const file = join(tmp(), 'sm.json');
    const sm = await MemoryStateMachine.open(file, 8);
    const e = (i: number, k: string, v: string) => ({
      index: logIndex(i),
      term: term(1),
      kind: 'command' as const,
      seq: makeSeq(BigInt(i), 0, 1),
      data: memoryCommand(k, v),
    });
    expect(await sm.apply([e(1, 'a', '1'), e(2, 'a', '2')])).toEqual(['', '1']);
    await sm.checkpoint();
    expect(await sm.apply([e(2, 'a', 'X'), e(3, 'b', '3')])).toEqual(['', '']);
    expect(sm.data.get('a')).toBe('2');
    const reopened = await MemoryStateMachine.open(file);
    expect((await reopened.appliedPosition()).index).toBe(2);
    const meta = {
      index: logIndex(3),
      term: term(1),
      membership: { voters: [], learners: [] },
      highestSeq: makeSeq(3n, 0, 1),
    };
    const chunks: Uint8Array[] = [];
    for await (const c of await sm.snapshot(meta)) chunks.push(c);
    expect(chunks.length).toBe(2);
    async function* it() {
      yield* chunks;
    }
    await reopened.install(meta, it());
    expect([...reopened.data]).toEqual([...sm.data]);
    expect((await (await MemoryStateMachine.open(file)).appliedPosition()).index).toBe(3);
  });
});
