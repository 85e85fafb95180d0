/**
 * Catalog command codec, version 1: how a command travels in the MM group's log entries. Catalog
 * changes are rare and small, so this is UTF-8 JSON `{"v":1,"c":{...command}}`, byte strings (the
 * split key) as lowercase hex under `keyHex`. decodeCommand checks the envelope and the command type
 * (CORRUPTION otherwise); the fields are validated by Catalog.apply, which refuses bad ones with a
 * stable code, identically on every replica.
 */
import { fromHex, toHex } from '../lib/bytes.js';
import { TesseraError } from '../lib/errors.js';
import type { CatalogCommand, CommandType } from './types.js';

export const commandCodecVersion = 1;

const commandTypes: ReadonlySet<CommandType> = new Set<CommandType>([
  'registerNode',
  'markNode',
  'addSpare',
  'takeSpare',
  'createGroup',
  'setGroupLeader',
  'addLearner',
  'promote',
  'removeMember',
  'createTable',
  'dropTable',
  'finishDropTable',
  'splitShard',
  'moveShard',
  'createToken',
  'revokeToken',
]);

export function encodeCommand(command: CatalogCommand): Uint8Array {
  const c: Record<string, unknown> =
    command.type === 'splitShard'
      ? {
          type: command.type,
          shard: command.shard,
          keyHex: toHex(command.key),
          targetGroup: command.targetGroup,
        }
      : { ...command };
  return new TextEncoder().encode(JSON.stringify({ v: commandCodecVersion, c }));
}

function corrupt(message: string): never {
  throw new TesseraError('CORRUPTION', `catalog command: ${message}`);
}

export function decodeCommand(bytes: Uint8Array): CatalogCommand {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    corrupt('not UTF-8 JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) corrupt('not an object');
  const envelope = doc as { v?: unknown; c?: unknown };
  if (envelope.v !== commandCodecVersion) corrupt(`unsupported version ${String(envelope.v)}`);
  const c = envelope.c;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) corrupt('no command');
  const type = (c as { type?: unknown }).type;
  if (typeof type !== 'string' || !commandTypes.has(type as CommandType))
    corrupt(`unknown type ${String(type)}`);
  if (type !== 'splitShard') return c as CatalogCommand;
  const { keyHex, ...rest } = c as { keyHex?: unknown };
  if (typeof keyHex !== 'string' || !/^(?:[0-9a-f]{2})*$/.test(keyHex)) corrupt('bad split key');
  return { ...rest, key: fromHex(keyHex) } as CatalogCommand;
}
