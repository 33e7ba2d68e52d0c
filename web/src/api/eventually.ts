// Profiles follow accounts through auth's events (docs/api.md: they appear "shortly after" the
// account changes), so after an account write the admin pages wait, briefly, until users reflects
// it before they reload a list. They look through the search (always 200) rather than
// GET /api/users/{id}, whose 404s would be logged by the browser as failed loads.
import { api } from './index';
import type { Profile } from './types';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it holds; false if it never did within the tries. */
export async function eventually(check: () => Promise<boolean>, tries = 20, delayMs = 150): Promise<boolean> {
  for (let i = 0; i < tries; i += 1) {
    if (await check()) return true;
    await sleep(delayMs);
  }
  return false;
}

async function findProfile(id: string, username: string): Promise<Profile | undefined> {
  const list = await api.listUsers({ q: username, limit: 100 });
  return list.items.find((profile) => profile.id === id);
}

/** Waits until users shows the account as auth now has it (created, renamed, role changed). */
export function profileSettled(account: { id: string; username: string; role: string }): Promise<boolean> {
  return eventually(async () => {
    const profile = await findProfile(account.id, account.username);
    return profile !== undefined && profile.username === account.username && profile.role === account.role;
  });
}

/** Waits until the profile of a deleted account is gone. */
export function profileGone(account: { id: string; username: string }): Promise<boolean> {
  return eventually(async () => (await findProfile(account.id, account.username)) === undefined);
}
