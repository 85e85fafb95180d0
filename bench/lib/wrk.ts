/** Runs wrk with bench/wrk/tessera.lua against Tessera's HTTP API and parses its JSON line. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Measurement, parseWrkOutput } from './parse.js';

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'wrk', 'tessera.lua');

export interface WrkOptions {
  url: string;
  token: string;
  mode: 'put' | 'get';
  table: string;
  keys: number;
  clients: number;
  durationS: number;
  /** wrk threads (default 2: this machine has 2 cores). */
  threads?: number;
  valueBytes?: number;
  /** Called every second with the elapsed seconds (wrk prints nothing while it runs). */
  onTick?: (elapsedS: number) => void;
}

export function runWrk(o: WrkOptions): Promise<Measurement> {
  const threads = Math.min(o.threads ?? 2, o.clients);
  const args = [
    `-t${threads}`,
    `-c${o.clients}`,
    `-d${o.durationS}s`,
    '--timeout',
    '10s',
    '--latency',
    '-s',
    script,
    o.url,
    '--',
    o.mode,
    o.table,
    String(o.keys),
    String(o.valueBytes ?? 100),
  ];
  return new Promise((resolve, reject) => {
    const p = spawn('wrk', args, {
      env: { ...process.env, TESSERA_TOKEN: o.token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const started = Date.now();
    const timer = setInterval(() => o.onTick?.((Date.now() - started) / 1000), 1000);
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', (e) => {
      clearInterval(timer);
      reject(new Error(`wrk: ${e.message} (install Debian's wrk package)`));
    });
    p.once('close', (code) => {
      clearInterval(timer);
      if (code !== 0) return reject(new Error(`wrk exited with ${code}: ${err}${out}`));
      try {
        resolve(parseWrkOutput(out, o.mode, o.clients));
      } catch (e) {
        reject(e);
      }
    });
  });
}
