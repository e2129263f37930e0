import { hasVisibleText } from './text';

describe('hasVisibleText', () => {
  it.each([
    ['', false],
    ['   \t\n', false],
    ['\u00a0\u3000\ufeff', false], // no-break and ideographic spaces, BOM
    ['\u200b\u200c\u200d\u2060', false], // zero-width space, joiners, word joiner
    ['\u200e\u202e', false], // direction marks
    ['\u2800', false], // braille blank
    ['\u3164\uffa0\u115f\u1160', false], // Hangul fillers
    ['\u0301\u20dd', false], // combining marks with nothing to combine with
    ['\u0007\u001b', false], // controls
    ['a', true],
    [' restore the interfaces file ', true],
    ['\u2800x', true],
    ['é', true],
    ['回滚', true],
    ['🙂', true],
    ['-', true],
  ])('%j → %s', (text, visible) => {
    expect(hasVisibleText(text)).toBe(visible);
  });
});
