/**
 * The request side of HTTP/1.1 (RFC 9112) as the request manager needs it, without node:http's
 * streams: the head of a request (request line and header fields) and a chunked body decoder.
 * Strict where laxness would let a request be read two ways (request smuggling): Content-Length
 * with Transfer-Encoding, differing Content-Lengths, obs-fold, bytes outside the grammar.
 */
import type { Headers } from './format.js';

/** A request head, parsed. */
export interface RequestHead {
  method: string;
  /** The request target as received (path and query, percent-encoded). */
  url: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  /** Lower-case names; a field given more than once is an array (header() refuses it). */
  headers: Headers;
  /** The declared body length; -1 without Content-Length. */
  contentLength: number;
  chunked: boolean;
  /** The connection stays open after the answer (HTTP/1.1 unless "close", 1.0 with "keep-alive"). */
  keepAlive: boolean;
  expectContinue: boolean;
}

/** A request the parser refuses: the connection answers `status` and closes. */
export class HttpParseError extends Error {
  readonly status: 400 | 431;
  constructor(status: 400 | 431, message: string) {
    super(message);
    this.status = status;
  }
}

const trailerFieldsMax = 64;
const CR = 13;
const LF = 10;
/** tchar of RFC 9110 5.6.2. */
const tchar = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") tchar[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) tchar[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) tchar[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) tchar[c] = 1;
/** Field value bytes: VCHAR, obs-text, SP and HTAB (no CTLs, no NUL). */
const vchar = new Uint8Array(256);
for (let c = 0x20; c <= 0xff; c++) vchar[c] = c === 0x7f ? 0 : 1;
vchar[9] = 1;
/** Request-target bytes: visible ASCII only. */
const target = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) target[c] = 1;

/** Where the head that starts at `from` ends (just past its empty line), or -1 if not yet there. */
export function headEnd(buf: Buffer, from: number): number {
  const i = buf.indexOf('\r\n\r\n', from, 'latin1');
  return i < 0 ? -1 : i + 4;
}

function bad(message: string): HttpParseError {
  return new HttpParseError(400, message);
}

/** Parses the head in buf[start, end) (end just past the empty line; see headEnd). */
export function parseHead(buf: Buffer, start: number, end: number, fieldsMax: number): RequestHead {
  // Request line: method SP request-target SP HTTP-version CRLF.
  let i = start;
  const lineEnd = buf.indexOf(LF, i);
  if (lineEnd <= i || buf[lineEnd - 1] !== CR) throw bad('malformed request line');
  let j = i;
  while (j < lineEnd && tchar[buf[j]!] === 1) j++;
  if (j === i || buf[j] !== 0x20) throw bad('malformed request line');
  const method = buf.toString('latin1', i, j);
  i = j + 1;
  j = i;
  while (j < lineEnd && target[buf[j]!] === 1) j++;
  if (j === i || buf[j] !== 0x20) throw bad('malformed request target');
  const url = buf.toString('latin1', i, j);
  const version = buf.toString('latin1', j + 1, lineEnd - 1);
  let minor: 0 | 1;
  if (version === 'HTTP/1.1') minor = 1;
  else if (version === 'HTTP/1.0') minor = 0;
  else throw bad(`unsupported protocol version ${JSON.stringify(version.slice(0, 16))}`);

  const headers: Headers = {};
  let fields = 0;
  let contentLength = -1;
  let transferEncoding: string | undefined;
  let connection = '';
  let expect: string | undefined;
  i = lineEnd + 1;
  while (i < end - 2) {
    const eol = buf.indexOf(LF, i);
    if (eol < 0 || eol >= end || buf[eol - 1] !== CR) throw bad('malformed header line');
    if (buf[i] === 0x20 || buf[i] === 0x09) throw bad('obsolete line folding is not accepted');
    if (++fields > fieldsMax) throw new HttpParseError(431, `more than ${fieldsMax} header fields`);
    j = i;
    while (j < eol && tchar[buf[j]!] === 1) j++;
    if (j === i || buf[j] !== 0x3a) throw bad('malformed header name');
    const name = buf.toString('latin1', i, j).toLowerCase();
    let a = j + 1;
    let b = eol - 1;
    while (a < b && (buf[a] === 0x20 || buf[a] === 0x09)) a++;
    while (b > a && (buf[b - 1] === 0x20 || buf[b - 1] === 0x09)) b--;
    for (let k = a; k < b; k++) if (vchar[buf[k]!] !== 1) throw bad(`invalid byte in header ${name}`);
    // Field values as UTF-8 (tokens and ETags are ASCII; nothing of ours reads other bytes).
    const value = buf.toString('utf8', a, b);
    switch (name) {
      case 'content-length': {
        if (!/^[0-9]{1,15}$/.test(value)) throw bad('invalid Content-Length');
        const n = Number(value);
        if (contentLength >= 0 && contentLength !== n) throw bad('conflicting Content-Length');
        contentLength = n;
        break;
      }
      case 'transfer-encoding':
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
        break;
      case 'connection':
        connection = connection === '' ? value.toLowerCase() : `${connection}, ${value.toLowerCase()}`;
        break;
      case 'expect':
        expect = value.toLowerCase();
        break;
    }
    const had = headers[name];
    if (had === undefined) headers[name] = value;
    else if (Array.isArray(had)) had.push(value);
    else headers[name] = [had, value];
    i = eol + 1;
  }

  let chunked = false;
  if (transferEncoding !== undefined) {
    if (contentLength >= 0) throw bad('both Content-Length and Transfer-Encoding');
    if (transferEncoding.trim().toLowerCase() !== 'chunked')
      throw bad(`transfer coding ${JSON.stringify(transferEncoding)} is not supported`);
    if (minor === 0) throw bad('Transfer-Encoding in an HTTP/1.0 request');
    chunked = true;
  }
  const tokens = connection === '' ? [] : connection.split(',').map((t) => t.trim());
  const keepAlive = minor === 1 ? !tokens.includes('close') : tokens.includes('keep-alive');
  if (expect !== undefined && expect !== '100-continue') throw new HttpParseError(400, 'unsupported Expect');
  return {
    method,
    url,
    minor,
    headers,
    contentLength,
    chunked,
    keepAlive,
    expectContinue: expect !== undefined,
  };
}

/**
 * Decodes a chunked body (RFC 9112 7.1) as bytes arrive: chunk sizes in hex, extensions ignored,
 * trailer fields read and dropped. Lines are bounded by `lineBytesMax`.
 */
export class ChunkedDecoder {
  private state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  private remaining = 0;
  private trailers = 0;
  private readonly lineBytesMax: number;

  constructor(lineBytesMax: number) {
    this.lineBytesMax = lineBytesMax;
  }

  get done(): boolean {
    return this.state === 'done';
  }

  /**
   * Reads from buf[from, buf.length), handing data to `onData` (views into buf); returns where it
   * stopped: at the end, or at a line not complete yet, or just past the body's end.
   */
  feed(buf: Buffer, from: number, onData: (data: Buffer) => void): number {
    let i = from;
    while (i < buf.length && this.state !== 'done') {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, buf.length - i);
        onData(buf.subarray(i, i + n));
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = 'data-end';
        continue;
      }
      const eol = buf.indexOf(LF, i);
      if (eol < 0) {
        if (buf.length - i > this.lineBytesMax) throw bad('chunk line too long');
        return i;
      }
      if (eol - i > this.lineBytesMax) throw bad('chunk line too long');
      if (buf[eol - 1] !== CR || eol === i) throw bad('malformed chunk line');
      const line = buf.toString('latin1', i, eol - 1);
      i = eol + 1;
      if (this.state === 'data-end') {
        if (line !== '') throw bad('chunk data longer than its size');
        this.state = 'size';
      } else if (this.state === 'size') {
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(line);
        if (m === null) throw bad('malformed chunk size');
        this.remaining = Number.parseInt(m[1]!, 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        this.state = 'done'; // the empty line after the trailer fields
      } else if (++this.trailers > trailerFieldsMax) {
        throw new HttpParseError(431, 'too many trailer fields');
      }
    }
    return i;
  }
}
