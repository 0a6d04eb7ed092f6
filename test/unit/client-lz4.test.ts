/**
 * The full SDK does not load LZ4 when it is imported (lz4js allocates a
 * 5 MB buffer as it loads): only a sync channel that negotiates LZ4 loads it.
 * Its own file, so nothing else in the process has loaded it.
 */
import { describe, expect, it } from "vitest";
import { CraftingClient } from "../../src/client/index";
import { loadLz4, lz4Compress, lz4Decompress, lz4Loaded } from "../../src/protocol/sync/lz4";

describe("LZ4 in the client SDK", () => {
  it("is not loaded at import, refuses clearly until loaded, and loads on demand", async () => {
    expect(CraftingClient).toBeDefined();
    expect(lz4Loaded()).toBe(false);
    expect(lz4Decompress(new Uint8Array([4, 34, 77, 24, 64, 64, 192]))).toEqual({
      ok: false,
      reason: "LZ4 is not loaded: await loadLz4() first",
    });
    expect(() => lz4Compress(new Uint8Array(200))).toThrow(/not loaded/);
    await loadLz4();
    expect(lz4Loaded()).toBe(true);
    const data = new TextEncoder().encode("iron-ore ".repeat(100));
    const round = lz4Decompress(lz4Compress(data));
    expect(round.ok && new TextDecoder().decode(round.data)).toBe("iron-ore ".repeat(100));
  });
});
