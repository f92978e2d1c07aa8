// Reading a state value as it crosses the wire (a plain string or nested object).

/** The top-level state of a value: `reaping` for `{ reaping: 'terminating' }`; '' for anything else. */
export function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object') return Object.keys(value)[0] ?? '';
  return '';
}
