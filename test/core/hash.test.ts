import test from "ava";
import XXH from "xxhashjs";
import { shardFor, xxh32 } from "@mesh/core";

const vectors: [string, number, number][] = [
  ["player_123", 1317604653, 3373],
  ["counter_1", 1734602353, 3697],
  ["", 46947589, 3333],
  ["ünïcødé-🚀", 2973846231, 2775],
];

for (const [id, hash, shard] of vectors) {
  test(`XXH32 of ${JSON.stringify(id)} is ${hash}, shard ${shard} of 4096`, (t) => {
    t.is(xxh32(id), hash);
    t.is(shardFor(id), shard);
    t.is(shardFor(id, 4096), shard);
  });
}

test("XXH32 agrees with xxhashjs on random ASCII, Unicode and long strings, with seeds", (t) => {
  const alphabet = "abcXYZ019_-. é€😀\u0000";
  let seed = 12345;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 2000; i++) {
    const length = Math.floor(random() * 70);
    let s = "";
    for (let j = 0; j < length; j++) s += [...alphabet][Math.floor(random() * [...alphabet].length)];
    const hashSeed = i % 7 === 0 ? Math.floor(random() * 4096) : 0;
    t.is(xxh32(s, hashSeed), XXH.h32(s, hashSeed).toNumber(), `string ${JSON.stringify(s)} seed ${hashSeed}`);
  }
  const long = "x".repeat(5000) + "ü";
  t.is(xxh32(long), XXH.h32(long, 0).toNumber());
});

test("shardFor stays within 0..shards-1 for any shard count", (t) => {
  for (const shards of [1, 7, 64, 4096, 65536]) {
    for (let i = 0; i < 500; i++) {
      const s = shardFor(`id-${i}`, shards);
      t.true(Number.isInteger(s) && s >= 0 && s < shards);
    }
  }
});
