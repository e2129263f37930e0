import { asksFor } from './media-negotiation';

const NDJSON = 'application/x-ndjson';
const JSON_TYPE = 'application/json';

describe('asksFor (Accept negotiation between a default answer and one asked for by name)', () => {
  it.each<[string | undefined, boolean]>([
    [undefined, false],
    ['', false],
    ['*/*', false],
    ['application/*', false],
    [JSON_TYPE, false],
    [NDJSON, true],
    ['Application/X-NDJSON', true],
    [`${NDJSON}; charset=utf-8`, true],
    [`${NDJSON}, ${JSON_TYPE}`, true],
    [`${JSON_TYPE}, ${NDJSON}`, true], // equal weights: the one asked for by name
    [`${JSON_TYPE}, ${NDJSON};q=0`, false], // refused explicitly (a substring test took it)
    [`${NDJSON};q=0`, false],
    [`${NDJSON};q=0.5, ${JSON_TYPE}`, false], // JSON weighs more
    [`${NDJSON};q=0.5, ${JSON_TYPE};q=0.4`, true],
    [`${NDJSON};q=0.5, */*`, false], // the wildcard gives JSON 1
    [`${NDJSON}, */*;q=0.1`, true],
    [`${NDJSON};q=abc`, false],
    [`text/${NDJSON}`, false],
  ])('Accept %p → %p', (accept, expected) => {
    expect(asksFor(accept, NDJSON, JSON_TYPE)).toBe(expected);
  });
});
