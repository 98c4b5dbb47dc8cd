#!/usr/bin/env node
// The CLI is TypeScript run through tsx's ESM loader, so a clone needs no build step: register the
// loader in this process (no second Node process, signals and exit codes stay ours), then load it.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
