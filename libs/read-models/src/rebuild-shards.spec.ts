import { describe, expect, it } from '@jest/globals';
import { shardOf } from './rebuild-shards';

describe('shardOf', () => {
  it('gives every document id one shard, the same each time, and spreads ids evenly', () => {
    for (const shards of [1, 2, 3, 4]) {
      const counts = new Array<number>(shards).fill(0);
      for (let n = 1; n <= 10_000; n++) {
        const id = `CHG-${String(n).padStart(3, '0')}`;
        const shard = shardOf(id, shards);
        expect(shard).toBe(shardOf(id, shards));
        expect(Number.isInteger(shard) && shard >= 0 && shard < shards).toBe(true);
        counts[shard]++;
      }
      for (const count of counts)
        expect(Math.abs(count - 10_000 / shards)).toBeLessThan(10_000 / shards / 10);
    }
  });
});
