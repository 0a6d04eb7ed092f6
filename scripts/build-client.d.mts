/** Builds one client entry with esbuild as the browser bundles are built; resolves with its size in bytes. */
export function buildClient(
  entry: string,
  outfile: string,
  options?: { write?: boolean; minify?: boolean },
): Promise<number>;
