// What a PATCH sends: only the fields whose new value differs from the stored one, so an edit
// that changes nothing sends nothing and an edit never overwrites a field it did not touch.
export function changedFields<T extends object>(next: T, current: { [K in keyof T]?: unknown }): Partial<T> {
  const changed: Partial<T> = {};
  for (const key of Object.keys(next) as (keyof T)[]) {
    if (next[key] !== current[key]) changed[key] = next[key];
  }
  return changed;
}
