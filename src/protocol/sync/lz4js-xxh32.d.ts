/** lz4js's xxHash32 (CommonJS, untyped): seed, bytes, start index, length → hash. */
declare module "lz4js/xxh32.js" {
  export function hash(seed: number, src: Uint8Array, index: number, length: number): number;
}
