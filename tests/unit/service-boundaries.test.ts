import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

// A service deploys on its own (Lambda bundle or container image): it may import services/shared and
// the repository's common modules, never another service's code.
const servicesDir = resolve(import.meta.dirname, '../../services');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('service boundaries', () => {
  it('no service imports another service', () => {
    const services = readdirSync(servicesDir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && e.name !== 'shared')
      .map((e) => e.name);
    const crossings: string[] = [];
    for (const service of services) {
      for (const file of tsFiles(join(servicesDir, service))) {
        for (const m of readFileSync(file, 'utf8').matchAll(/from\s+'(\.[^']+)'/g)) {
          const target = relative(servicesDir, resolve(dirname(file), m[1]!));
          const owner = target.split(sep)[0]!;
          if (services.includes(owner) && owner !== service) {
            crossings.push(`${relative(servicesDir, file)} -> ${target}`);
          }
        }
      }
    }
    expect(crossings).toEqual([]);
  });
});

describe('tests, bench and samples share code through testkit/ only', () => {
  // docs/architecture.md: "Tests, bench and samples import testkit/; none of them imports another's
  // folder, and nothing under services/ imports testkit/."
  const root = resolve(import.meta.dirname, '../..');
  const folders = ['tests', 'bench', 'samples', 'services'] as const;
  const forbidden: Record<(typeof folders)[number], readonly string[]> = {
    tests: ['bench', 'samples'],
    bench: ['tests', 'samples'],
    samples: ['tests', 'bench'],
    services: ['tests', 'bench', 'samples', 'testkit'],
  };

  it('no file imports a folder it must not', () => {
    const crossings: string[] = [];
    for (const folder of folders) {
      let files: string[];
      try {
        files = tsFiles(join(root, folder));
      } catch {
        continue; // a folder without TypeScript
      }
      for (const file of files) {
        for (const m of readFileSync(file, 'utf8').matchAll(/(?:from\s+|import\()'(\.[^']+)'/g)) {
          const target = relative(root, resolve(dirname(file), m[1]!));
          if (forbidden[folder].includes(target.split(sep)[0]!))
            crossings.push(`${relative(root, file)} -> ${target}`);
        }
      }
    }
    expect(crossings).toEqual([]);
  });
});
