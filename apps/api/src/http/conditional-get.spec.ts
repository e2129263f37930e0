import { ifNoneMatchHolds } from './conditional-get';

describe('ifNoneMatchHolds', () => {
  it.each([
    ['"7"', true],
    ['W/"7"', true],
    [' "3", "7" ', true],
    ['"3", W/"7"', true],
    ['*', true],
    ['"8"', false],
    ['"70"', false],
    ['7', false],
    ['', false],
  ])('If-None-Match %j against "7": %s', (header, holds) => {
    expect(ifNoneMatchHolds(header, '"7"')).toBe(holds);
  });

  it('no header: the answer is sent', () => {
    expect(ifNoneMatchHolds(undefined, '"7"')).toBe(false);
  });
});
