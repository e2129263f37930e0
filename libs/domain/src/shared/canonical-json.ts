/**
 * JSON with object keys sorted, so equal values give equal strings (used for diffs and for the
 * event hash chain). Same value rules as JSON.stringify: undefined and functions are left out
 * of objects and become null in arrays; toJSON (Date) is honoured. Written as plain loops
 * because it runs for every appended event.
 */
export const canonicalJson = (value: unknown): string => {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    case 'bigint':
      throw new TypeError('canonicalJson: BigInt values have no JSON form; convert them to strings first');
    default:
      return 'null';
  }
  if (value === null) return 'null';
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return canonicalJson((value as { toJSON: () => unknown }).toJSON());
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const item: unknown = value[i];
      out += item === undefined || typeof item === 'function' ? 'null' : canonicalJson(item);
    }
    return out + ']';
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length > 1) keys.sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item = record[key];
    if (item === undefined || typeof item === 'function') continue;
    if (!first) out += ',';
    first = false;
    out += quotedKey(key) + ':' + canonicalJson(item);
  }
  return out + '}';
};

// The same few dozen keys come back in every event: quote each once (bounded, in case of not).
const QUOTED_KEYS = new Map<string, string>();
const quotedKey = (key: string): string => {
  let quoted = QUOTED_KEYS.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key);
    if (QUOTED_KEYS.size < 10_000) QUOTED_KEYS.set(key, quoted);
  }
  return quoted;
};
