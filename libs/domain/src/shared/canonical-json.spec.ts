import { canonicalJson, memberOpening, quotedString, sortKeys } from './canonical-json';

/** A small deterministic generator, so a failure names a seed that reproduces it. */
const random = (seed: number) => () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
  return seed / 2 ** 31;
};

const ALPHABET = ['a', 'B', 'z', '0', '9', '_', '-', 'é', 'Z', '\u{1F600}', '\uFFFD', ' ', '10', '2'];

describe('sortKeys', () => {
  it.each([1, 2, 3, 4, 5])(
    'orders keys as Array.prototype.sort() does (UTF-16 code units), seed %i',
    (seed) => {
      const next = random(seed);
      for (let round = 0; round < 200; round++) {
        const keys = Array.from({ length: Math.floor(next() * 12) }, () =>
          Array.from(
            { length: 1 + Math.floor(next() * 3) },
            () => ALPHABET[Math.floor(next() * ALPHABET.length)],
          ).join(''),
        );
        expect(sortKeys([...keys])).toEqual([...keys].sort());
      }
    },
  );

  it('sorts 200,000 keys in descending order in n log n (a wide body must not hold the event loop)', () => {
    const keys = Array.from({ length: 200_000 }, (_, i) => `k${String(199_999 - i).padStart(6, '0')}`);
    const sorted = sortKeys([...keys]);
    expect(sorted[0]).toBe('k000000');
    expect(sorted).toEqual([...keys].reverse());
  });

  it('sorts in place and answers the same array', () => {
    const keys = ['b', 'a'];
    expect(sortKeys(keys)).toBe(keys);
    expect(keys).toEqual(['a', 'b']);
  });
});

describe('canonicalJson', () => {
  it('writes numbers as JSON.stringify does', () => {
    for (const n of [0, -0, 1, -1.5, 0.1 + 0.2, 1e21, 1e-7, 5e-324, Number.MAX_SAFE_INTEGER, 123_456.789]) {
      expect(canonicalJson(n)).toBe(JSON.stringify(n));
      expect(canonicalJson({ n })).toBe(JSON.stringify({ n }));
    }
    expect(canonicalJson([NaN, Infinity, -Infinity])).toBe('[null,null,null]');
  });

  it('sorts keys at every depth, including integer-like keys that objects list first', () => {
    const value = { b: 1, a: { '10': 'x', '9': 'y', z: [{ d: 1, c: 2 }] }, é: true, A: null };
    expect(canonicalJson(value)).toBe('{"A":null,"a":{"10":"x","9":"y","z":[{"c":2,"d":1}]},"b":1,"é":true}');
    expect(JSON.parse(canonicalJson(value))).toEqual(value);
  });

  it('follows JSON.stringify for undefined, functions and toJSON', () => {
    const value = {
      u: undefined,
      f: () => 1,
      d: new Date('2026-01-02T03:04:05.000Z'),
      l: [undefined, () => 1],
    };
    expect(canonicalJson(value)).toBe('{"d":"2026-01-02T03:04:05.000Z","l":[null,null]}');
  });
});

describe('quotedString', () => {
  it('writes every UTF-16 code unit as JSON.stringify does, alone and inside text', () => {
    for (let unit = 0; unit <= 0xffff; unit++) {
      const c = String.fromCharCode(unit);
      expect(quotedString(c)).toBe(JSON.stringify(c));
      expect(quotedString(`ab${c}cd`)).toBe(JSON.stringify(`ab${c}cd`));
    }
  });

  it('keeps pairs of surrogates, escapes lone ones, and quotes the empty string', () => {
    for (const text of ['\u{1F600}', 'x\u{1F600}\ud800', '\udc00\ud800', '', 'a"b\\c\n', '\u2028\u007f'])
      expect(quotedString(text)).toBe(JSON.stringify(text));
  });
});

describe('memberOpening', () => {
  it('opens a member with its quoted key, after a comma unless first', () => {
    expect(memberOpening('by', true)).toBe('"by":');
    expect(memberOpening('by', false)).toBe(',"by":');
    expect(memberOpening('a"b\n', false)).toBe(`,${JSON.stringify('a"b\n')}:`);
  });

  it('gives the same text for a key however often it is asked, first or not', () => {
    for (let round = 0; round < 3; round++) {
      expect(canonicalJson({ 'x"y': 1, a: { 'x"y': 2 } })).toBe('{"a":{"x\\"y":2},"x\\"y":1}');
    }
  });
});
