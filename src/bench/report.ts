/** Console output for the benchmarks: a live progress line and aligned tables. */

/** One line on stderr rewritten in place on a terminal; elsewhere a line at most every 5 s. */
export class ProgressLine {
  private lastPrintMs = 0;
  private shown = false;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {}

  update(text: string): void {
    if (this.quiet) return;
    if (this.out.isTTY) {
      this.out.write(`\r\x1b[K${text}`);
      this.shown = true;
      return;
    }
    const now = Date.now();
    if (now - this.lastPrintMs < 5000) return;
    this.lastPrintMs = now;
    this.out.write(`${text}\n`);
  }

  /** Clears the line (terminal) so that the next output starts clean. */
  clear(): void {
    if (this.shown && this.out.isTTY) this.out.write('\r\x1b[K');
    this.shown = false;
    this.lastPrintMs = 0;
  }
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function fmtMs(ms: number): string {
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

/** Columns aligned: text columns to the left, numeric-looking ones to the right. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map(
    (_, i) => rows.length > 0 && rows.every((r) => /^[-\d.,x×%]*$/.test(r[i] ?? '')),
  );
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}
