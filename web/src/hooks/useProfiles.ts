// Names for owner ids: devices carry only owner_id, so a page looks each owner up once
// (GET /api/users/{id}) and remembers the answer; an unknown id maps to null.
import { useCallback, useEffect, useRef, useState } from 'react';
import { api } from '../api';
import type { Profile } from '../api/types';

export function useProfiles(ids: (string | null)[]) {
  const [known, setKnown] = useState<Record<string, Profile | null>>({});
  const asked = useRef(new Set<string>());
  const key = Array.from(new Set(ids.filter((id): id is string => Boolean(id))))
    .sort()
    .join(',');

  useEffect(() => {
    const missing = key ? key.split(',').filter((id) => !asked.current.has(id)) : [];
    if (missing.length === 0) return;
    missing.forEach((id) => asked.current.add(id));
    Promise.all(
      missing.map((id) =>
        api.getUser(id).then(
          (profile): [string, Profile | null] => [id, profile],
          (): [string, Profile | null] => {
            asked.current.delete(id);
            return [id, null];
          },
        ),
      ),
    ).then((entries) => setKnown((prev) => ({ ...prev, ...Object.fromEntries(entries) })));
  }, [key]);

  const remember = useCallback((profile: Profile) => {
    asked.current.add(profile.id);
    setKnown((prev) => ({ ...prev, [profile.id]: profile }));
  }, []);

  return { profiles: known, remember };
}
