export * from './errors.js';
export * from './specs.js';
export * from './messages.js';
export * from './validate-spec.js';
