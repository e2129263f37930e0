import { bodyShapeProblem } from './body-shape';

const nested = (levels: number): unknown => {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = i % 2 ? { inner: value } : [value];
  return value;
};

const deeperThan = (value: unknown, maxDepth: number) =>
  bodyShapeProblem(value, { maxDepth })?.includes('deeper') ?? false;

describe('bodyShapeProblem', () => {
  it('counts objects and arrays as levels, not scalars', () => {
    expect(deeperThan(nested(3), 3)).toBe(false);
    expect(deeperThan(nested(4), 3)).toBe(true);
    expect(bodyShapeProblem(nested(4), { maxDepth: 3 })).toBe(
      'the body nests objects and arrays deeper than 3 levels',
    );
    expect(bodyShapeProblem('text', { maxDepth: 0 })).toBeUndefined();
    expect(bodyShapeProblem(null, { maxDepth: 0 })).toBeUndefined();
    expect(bodyShapeProblem({ a: 1, b: [1, 2], c: { d: null } }, { maxDepth: 2 })).toBeUndefined();
  });

  it('finds the deep branch among shallow ones', () => {
    expect(deeperThan({ a: [1], b: { c: 2 }, d: [[[[{}]]]] }, 5)).toBe(true);
    expect(deeperThan({ a: [1], b: { c: 2 }, d: [[[[{}]]]] }, 6)).toBe(false);
  });

  it('refuses control characters but tab, line feed and carriage return, naming where', () => {
    expect(bodyShapeProblem({ lessonsLearned: 'line one\r\n\tline two' })).toBeUndefined();
    expect(bodyShapeProblem({ review: { lessonsLearned: 'x\u001b[2Jy' } })).toBe(
      'review.lessonsLearned contains the control character U+001B: text may hold tab, line feed and carriage return only',
    );
    expect(bodyShapeProblem({ implementationPlan: ['ok', 'bell\u0007'] })).toMatch(
      /^implementationPlan\.1 contains the control character U\+0007/,
    );
    expect(bodyShapeProblem({ title: 'nul\u0000' })).toMatch(/U\+0000/);
    expect(bodyShapeProblem({ title: 'c1 \u009b31m' })).toMatch(/U\+009B/); // 8-bit CSI
    expect(bodyShapeProblem('\u001b')).toMatch(/^the body contains/);
    expect(bodyShapeProblem({ title: 'é 回滚 🙂 \u00a0' })).toBeUndefined();
  });

  it('refuses a huge array before walking its items', () => {
    let reads = 0;
    const items = new Proxy(new Array(600_000).fill(0), {
      get(target, property, receiver) {
        if (typeof property === 'string' && /^\d+$/.test(property)) reads++;
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    expect(bodyShapeProblem({ implementationPlan: items })).toBe(
      'the body has more than 5000 members in all',
    );
    expect(reads).toBe(0);
  });

  it('walks a body far deeper than the call stack allows', () => {
    const deep = JSON.parse(`{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`) as unknown;
    expect(deeperThan(deep, 32)).toBe(true);
  });

  it('refuses an object with more members than allowed, at any depth; arrays are not limited', () => {
    const wide = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    expect(bodyShapeProblem(wide(3), { maxMembers: 3 })).toBeUndefined();
    expect(bodyShapeProblem(wide(4), { maxMembers: 3 })).toBe(
      'an object in the body has more than 3 members',
    );
    expect(bodyShapeProblem({ a: { b: [wide(4)] } }, { maxMembers: 3 })).toBe(
      'an object in the body has more than 3 members',
    );
    expect(
      bodyShapeProblem({ list: Array.from({ length: 10 }, (_, i) => i) }, { maxMembers: 3 }),
    ).toBeUndefined();
    expect(bodyShapeProblem(wide(100))).toBeUndefined();
    expect(bodyShapeProblem(wide(101))).toBe('an object in the body has more than 100 members');
  });

  it('refuses more members than allowed in all, counting keys and array items', () => {
    const body = { a: [1, 2, 3], b: { c: 1, d: [4, 5] } }; // 2 + 3 + 2 + 2 = 9
    expect(bodyShapeProblem(body, { maxTotal: 9 })).toBeUndefined();
    expect(bodyShapeProblem(body, { maxTotal: 8 })).toBe('the body has more than 8 members in all');
    // 60 objects of 90 keys: each within the per-object limit, 5,460 members in all
    const many = {
      list: Array.from({ length: 60 }, () =>
        Object.fromEntries(Array.from({ length: 90 }, (_, i) => [`k${i}`, i])),
      ),
    };
    expect(bodyShapeProblem(many)).toBe('the body has more than 5000 members in all');
  });
});
