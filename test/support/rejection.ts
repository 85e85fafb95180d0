/** Test helper shared by every module's tests: the TesseraError a promise rejects with. */
import { isTesseraError, type TesseraError } from '../../src/lib/errors.js';

/** The TesseraError `p` rejects with; throws if `p` resolves or rejects with anything else. */
export async function rejection(p: Promise<unknown>): Promise<TesseraError> {
  try {
    await p;
  } catch (e) {
    if (isTesseraError(e)) return e;
    throw e;
  }
  throw new Error('expected a rejection with a TesseraError');
}
