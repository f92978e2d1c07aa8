export * from './errors.js';
export * from './specs.js';
export * from './machine-events.js';
export * from './host-requests.js';
export * from './actor-records.js';
export * from './worker-messages.js';
export * from './validate-spec.js';
