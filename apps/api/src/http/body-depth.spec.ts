import { nestsDeeperThan } from './body-depth';

const nested = (levels: number): unknown => {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = i % 2 ? { inner: value } : [value];
  return value;
};

describe('nestsDeeperThan', () => {
  it('counts objects and arrays as levels, not scalars', () => {
    expect(nestsDeeperThan(nested(3), 3)).toBe(false);
    expect(nestsDeeperThan(nested(4), 3)).toBe(true);
    expect(nestsDeeperThan('text', 0)).toBe(false);
    expect(nestsDeeperThan(null, 0)).toBe(false);
    expect(nestsDeeperThan({ a: 1, b: [1, 2], c: { d: null } }, 2)).toBe(false);
  });

  it('finds the deep branch among shallow ones', () => {
    expect(nestsDeeperThan({ a: [1], b: { c: 2 }, d: [[[[{}]]]] }, 5)).toBe(true);
    expect(nestsDeeperThan({ a: [1], b: { c: 2 }, d: [[[[{}]]]] }, 6)).toBe(false);
  });

  it('walks a body far deeper than the call stack allows', () => {
    const deep = JSON.parse(`{"a":${'['.repeat(200_000)}${']'.repeat(200_000)}}`) as unknown;
    expect(nestsDeeperThan(deep, 32)).toBe(true);
  });
});
