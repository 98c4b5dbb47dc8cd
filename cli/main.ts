/**
 * `rowstream`: drop a CSV into the pipeline and follow it, look at jobs, run the local stack and its
 * services, serve the local dashboard, replay archived events. `bin/rowstream.mjs` starts this file
 * through tsx; `npx tsx cli/main.ts ...` works the same.
 */
import { buildProgram, runCli } from './program.ts';

// `rowstream status | head` closes the pipe early: that is the reader being done, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await runCli(buildProgram(), process.argv);
