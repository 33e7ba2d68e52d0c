// How values read on screen.
import type { Profile, Role } from './api/types';

const dateFormat = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const kwhFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });

export const formatDate = (ms: number) => (Number.isFinite(ms) ? dateFormat.format(new Date(ms)) : '');

export const formatKwh = (kwh: number) => `${kwhFormat.format(kwh)} kWh`;

export const roleLabel = (role: Role) => (role === 'admin' ? 'Administrator' : 'Customer');

export const fullName = (p: Pick<Profile, 'first_name' | 'last_name'>) =>
  [p.first_name, p.last_name].filter(Boolean).join(' ');
