/**
 * A seeded random source for generated test cases (the same cases on every run): xorshift32,
 * `rand(n)` an integer in [0, n). Not an LCG: `% n` reads an LCG's low bits, which repeat with a
 * short period and starve a generator of whole kinds of cases.
 */
export function seededRandom(seed: number): (n: number) => number {
  let s = seed | 0 || 1;
  return (n: number): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}
