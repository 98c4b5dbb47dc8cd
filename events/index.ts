export * from './aws.ts';
export * from './bus.ts';
export * from './catalog.ts';
export * from './ids.ts';
