import { canonicalJson } from '@changeledger/domain';
import { chainMetadata, computeEventHash, GENESIS_HASH, sealEvent } from './event-hash';

/**
 * Every stored chain was hashed by this function: its output for a given event must never
 * change, however it is rewritten. The expected values were computed by the first version.
 */
describe('computeEventHash', () => {
  const event = {
    streamId: 'changeRequest-CHG-007',
    revision: 3n,
    type: 'ReviewRecorded',
    data: {
      kind: 'technical',
      verdict: 'approve',
      notes: 'Zürich "quoted" \u2028 line',
      criteria: { b: 'ok', a: 'fine', '10': 'x', '9': 'y' },
      by: { id: 'u-1', name: 'Ana' },
      at: '2026-11-26T10:00:00.000Z',
      when: new Date('2026-01-02T03:04:05.000Z'),
      nothing: undefined,
      list: [1, undefined, 2.5, -0, null, true],
    },
    metadata: {
      actor: { id: 'u-1', name: 'Ana', roles: ['technical-reviewer'] },
      occurredAt: '2026-11-26T10:00:00.000Z',
      correlationId: 'c-1',
      causationId: null,
      schemaVersion: 1,
      previousHash: 'ab'.repeat(32),
      hash: 'ignored',
    },
  };

  it('gives the same hash as it always has (sorted keys, own hash left out, previous hash in)', () => {
    expect(computeEventHash(event, 'ab'.repeat(32))).toBe(
      '5a70481ea943f0f59f70b55419f8ba2fb5ba565856070da4d107775910e23893',
    );
    expect(
      computeEventHash(
        { ...event, revision: 0n, metadata: { ...event.metadata, previousHash: GENESIS_HASH } },
        GENESIS_HASH,
      ),
    ).toBe('86384b56739682929df1cb29c6fc17c9143ab060323807873bc5e3999387e5df');
  });

  it('changes when anything hashed changes, not when the stored hash does', () => {
    const base = computeEventHash(event, 'ab'.repeat(32));
    expect(
      computeEventHash({ ...event, metadata: { ...event.metadata, hash: 'other' } }, 'ab'.repeat(32)),
    ).toBe(base);
    expect(computeEventHash({ ...event, revision: 4n }, 'ab'.repeat(32))).not.toBe(base);
    expect(computeEventHash({ ...event, type: 'ReviewRecordeD' }, 'ab'.repeat(32))).not.toBe(base);
    expect(computeEventHash(event, 'cd'.repeat(32))).not.toBe(base);
    expect(
      computeEventHash(
        { ...event, data: { ...event.data, notes: 'Zürich "quoted"  line' } },
        'ab'.repeat(32),
      ),
    ).not.toBe(base);
  });

  it('chainMetadata adds previousHash and the hash of the event with it', () => {
    const { hash: _hash, previousHash: _previous, ...plain } = event.metadata;
    const chained = chainMetadata({ ...event, metadata: plain }, 'ab'.repeat(32));
    expect(chained).toEqual({
      ...plain,
      previousHash: 'ab'.repeat(32),
      hash: computeEventHash(event, 'ab'.repeat(32)),
    });
  });

  it('sealEvent stores the texts the hash covers: parsed, what JSON of the data and of chainMetadata give', () => {
    const { hash: _hash, previousHash: _previous, ...plain } = event.metadata;
    const input = { ...event, metadata: plain };
    const sealed = sealEvent(input, 'ab'.repeat(32));
    expect(sealed.hash).toBe(computeEventHash(event, 'ab'.repeat(32)));
    expect(JSON.parse(sealed.data)).toEqual(JSON.parse(JSON.stringify(event.data)));
    expect(JSON.parse(sealed.metadata)).toEqual(
      JSON.parse(JSON.stringify(chainMetadata(input, 'ab'.repeat(32)))),
    );
    // what a verifier reads back hashes to what was stored
    expect(
      computeEventHash(
        { ...event, data: JSON.parse(sealed.data), metadata: JSON.parse(sealed.metadata) },
        'ab'.repeat(32),
      ),
    ).toBe(sealed.hash);
    // a caller's own hash fields are replaced, as chainMetadata replaces them
    expect(JSON.parse(sealEvent(event, GENESIS_HASH).metadata)).toMatchObject({
      previousHash: GENESIS_HASH,
      hash: computeEventHash(event, GENESIS_HASH),
    });
  });

  it('sealEvent stores exactly the canonical texts, when names, types and text need escaping', () => {
    const odd = {
      streamId: 'changeRequest-"CHG"\u0001',
      revision: 12n,
      type: 'Odd\\Type\ud800',
      data: { 'k"ey': 'line\nbreak \u{1F600} \udc00', nested: { z: '\t', a: ['"'] } },
      metadata: {
        ...event.metadata,
        correlationId: 'c"1',
        actor: { id: 'u\\1', name: 'N\u001b', roles: [] },
      },
    };
    const previous = 'not "hex"\n';
    const sealed = sealEvent(odd, previous);
    expect(sealed.hash).toBe(computeEventHash(odd, previous));
    expect(sealed.data).toBe(canonicalJson(odd.data));
    const { hash: _hash, previousHash: _previous, ...plain } = odd.metadata;
    expect(sealed.metadata).toBe(
      `${canonicalJson({ ...plain, previousHash: previous }).slice(0, -1)},"hash":"${sealed.hash}"}`,
    );
  });
});
