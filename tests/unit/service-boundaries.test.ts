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
