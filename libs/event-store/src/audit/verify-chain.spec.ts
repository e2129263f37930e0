import { missingNumberedStream } from './verify-chain';

const changeStreams = (count: number, skip?: number) =>
  Array.from({ length: count }, (_, i) => i + 1)
    .filter((n) => n !== skip)
    .map((n) => `changeRequest-CHG-${String(n).padStart(3, '0')}`);

describe('missingNumberedStream', () => {
  it('names the first number missing between numbers in use, per family', () => {
    expect(missingNumberedStream(changeStreams(5))).toBeUndefined();
    expect(missingNumberedStream(changeStreams(5, 3))).toBe('changeRequest-CHG-003');
    expect(
      missingNumberedStream([...changeStreams(3), 'standardTemplate-STD-001', 'standardTemplate-STD-003']),
    ).toBe('standardTemplate-STD-002');
    // the newest stream removed leaves no gap: that needs an anchor
    expect(missingNumberedStream(changeStreams(4, 4))).toBeUndefined();
  });

  it('copes with more streams than a spread into Math.max takes (the log of a large deployment)', () => {
    expect(missingNumberedStream(changeStreams(300_000))).toBeUndefined();
    expect(missingNumberedStream(changeStreams(300_000, 299_998))).toBe('changeRequest-CHG-299998');
  });
});
