// How the CLI prints: JSON that keeps 64-bit counters exact and payloads readable, and plain
// aligned columns for people.

/** JSON with bigint as decimal strings and Buffers as hex. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    function replacer(this: Record<string, unknown>, key: string, v: unknown) {
      const original = key === '' ? v : this[key];
      if (typeof original === 'bigint') return original.toString();
      if (Buffer.isBuffer(original)) return original.toString('hex');
      return v;
    },
    2,
  );
}

/** Left-aligned columns separated by two spaces. */
export function columns(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
