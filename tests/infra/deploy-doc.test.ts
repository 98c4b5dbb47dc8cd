import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../cli/program.ts';
import { ROOT } from './sdk-calls.ts';

/**
 * docs/deploy.md is walked by a first-time operator from a clean shell: every command it shows must
 * exist as written. Checked here: each shell line of its code blocks and each inline `code` command
 * that runs `rowstream`, `npm run` or `sst` names a command and flags that exist.
 */

const DOC = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8');
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
};

/** Shell lines of the ```sh blocks and inline `…` spans that start with one of our commands. */
function commandLines(): string[] {
  const blocks = [...DOC.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n'));
  const inline = [...DOC.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
  return [...blocks, ...inline]
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => /^(npx |npm run |rowstream )/.test(l));
}

const flagsOf = (words: readonly string[]) =>
  words.filter((w) => /^--[a-z]/.test(w)).map((w) => w.replace(/=.*$/, ''));

const optionNames = (cmd: Command): string[] => cmd.options.map((o) => o.long ?? '');

describe('docs/deploy.md: every command it shows exists as written', () => {
  const lines = commandLines();

  it('finds the commands of the doc', () => {
    expect(lines.some((l) => l.startsWith('npx rowstream doctor'))).toBe(true);
    expect(lines.some((l) => l.startsWith('npm run bootstrap'))).toBe(true);
    expect(lines.some((l) => l.startsWith('npx rowstream replay'))).toBe(true);
  });

  it('runs the CLI through npx (npm ci does not put `rowstream` on PATH)', () => {
    expect(lines.filter((l) => l.startsWith('rowstream '))).toEqual([]);
  });

  it('names only rowstream subcommands and options that exist', () => {
    const program = buildProgram();
    const global = optionNames(program);
    for (const line of lines.filter((l) => l.startsWith('npx rowstream '))) {
      const words = line.split(/\s+/).slice(2);
      // the command path: leading words that are subcommands
      let cmd: Command = program;
      const path: Command[] = [];
      for (const w of words) {
        if (w.startsWith('-')) continue;
        const sub = cmd.commands.find((c) => c.name() === w);
        if (!sub) break;
        cmd = sub;
        path.push(sub);
      }
      expect(path.length, `${line}: no such rowstream command`).toBeGreaterThan(0);
      const known = [...global, ...path.flatMap(optionNames)];
      for (const f of flagsOf(words)) expect(known, `${line}: ${f}`).toContain(f);
    }
  });

  it('names only npm scripts that exist, with flags their script parses', () => {
    for (const line of lines.filter((l) => l.startsWith('npm run '))) {
      const [, , script, ...rest] = line.split(/\s+/);
      const body = PACKAGE.scripts[script!];
      expect(body, `${line}: no npm script ${script}`).toBeDefined();
      const file = body!.match(/^tsx (scripts\/[\w-]+\.ts)$/)?.[1];
      if (!file) continue;
      const src = readFileSync(join(ROOT, file), 'utf8');
      for (const f of flagsOf(rest)) {
        const name = f.slice(2);
        expect(src, `${line}: ${file} has no option ${f}`).toMatch(
          new RegExp(`['"]?${name}['"]?: \\{ type:`),
        );
      }
    }
  });

  it('names only sst commands of the pinned SST', () => {
    for (const line of lines.filter((l) => l.startsWith('npx sst '))) {
      const command = line.split(/\s+/)[2]!;
      expect(existsSync(join(ROOT, 'node_modules/sst/cli/commands', `${command}.js`)), line).toBe(true);
    }
  });
});
