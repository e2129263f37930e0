/** One media range of an Accept header: `type/subtype` (lower case) and its weight. */
interface MediaRange {
  readonly type: string;
  readonly q: number;
}

const parseAccept = (accept: string): MediaRange[] =>
  accept
    .split(',')
    .map((part) => {
      const [type, ...params] = part.split(';').map((p) => p.trim());
      let q = 1;
      for (const param of params) {
        const [name, value] = param.split('=').map((p) => p.trim());
        if (name.toLowerCase() === 'q') q = Number(value);
      }
      return { type: type.toLowerCase(), q: Number.isFinite(q) ? Math.min(Math.max(q, 0), 1) : 0 };
    })
    .filter((range) => range.type !== '');

/**
 * The weight Accept gives `type` (RFC 9110 §12.5.1): its most specific range decides, so
 * `application/x-ndjson;q=0` refuses it even beside `*\/*`. Not named at all: 0 (the caller's
 * default answers).
 */
const weightOf = (ranges: readonly MediaRange[], type: string): number => {
  const [main] = type.split('/');
  const exact = ranges.find((r) => r.type === type);
  if (exact) return exact.q;
  const family = ranges.find((r) => r.type === `${main}/*`);
  if (family) return family.q;
  return ranges.find((r) => r.type === '*/*')?.q ?? 0;
};

/**
 * Whether a client asked for `wanted` by name over `fallback` (the default answer): `wanted` must be
 * named with a weight above 0, and `fallback` may not weigh more. A wildcard alone never picks
 * `wanted`: `*\/*` gets the default.
 */
export const asksFor = (accept: string | undefined, wanted: string, fallback: string): boolean => {
  if (!accept) return false;
  const ranges = parseAccept(accept);
  const named = ranges.find((r) => r.type === wanted);
  if (!named || named.q <= 0) return false;
  return weightOf(ranges, fallback) <= named.q;
};
