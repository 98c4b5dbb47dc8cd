/**
 * `npm run build:producer [-- <outfile>]`: the producer as the image runs it, one ES module
 * (default dist/producer/main.mjs) with its npm packages left as imports (the image installs them
 * with `npm ci --omit=dev`) and a source map (`node --enable-source-maps` prints TypeScript
 * positions). Against `node --import tsx` on the sources this saves ~33 MB of resident memory
 * and ~0.9 s of start-up on a quiet machine, more under load (`npm run bench:startup`).
 */
import { resolve } from 'node:path';
import { type BuildOptions, build, buildSync } from 'esbuild';

/**
 * The flags node runs the bundle with, in the image's CMD (stacks/producer.Dockerfile; a test checks
 * they agree) and in the tests and benches that start the bundle.
 * - `--enable-source-maps`: stack traces with TypeScript positions.
 * - `--max-semi-space-size=16` (MiB): caps V8's young generation. Node 24 lets it grow to 128 MiB
 *   (2 semi-spaces of 64), which was most of the producer's 325-330 MB peak RSS on a 1M-row job while
 *   the live heap stayed under 70 MB; with 16 the peak was 234-237 MB at the same rows/s
 *   (`npm run bench:producer -- --node-options image,--max-semi-space-size=16,--max-semi-space-size=8`,
 *   docs/producer.md "Speed round 4").
 */
export const PRODUCER_NODE_FLAGS: readonly string[] = ['--enable-source-maps', '--max-semi-space-size=16'];

function buildOptions(outfile: string): BuildOptions & { outfile: string } {
  const root = resolve(import.meta.dirname, '..');
  return {
    entryPoints: [resolve(root, 'services/producer/main.ts')],
    outfile: resolve(root, outfile),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    packages: 'external',
    sourcemap: true,
    logLevel: 'warning',
  };
}

export async function buildProducer(outfile = 'dist/producer/main.mjs'): Promise<string> {
  const options = buildOptions(outfile);
  await build(options);
  return options.outfile;
}

/** The same build, synchronous (the local runner builds the bundle right before it starts it). */
export function buildProducerSync(outfile: string): string {
  const options = buildOptions(outfile);
  buildSync(options);
  return options.outfile;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  console.log(await buildProducer(process.argv[2]));
}
