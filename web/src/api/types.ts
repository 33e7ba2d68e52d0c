// The shapes of the EMS REST API (docs/api.md). Times are epoch milliseconds (UTC).

export type Role = 'admin' | 'client';

export const ENERGY_CLASSES = ['A+++', 'A++', 'A+', 'A', 'B', 'C', 'D', 'E', 'F', 'G'] as const;
export type EnergyClass = (typeof ENERGY_CLASSES)[number];

/** The user carried by a login answer. */
export interface SessionUser {
  id: string;
  username: string;
  role: Role;
}

/** The answer of login, register and password change. */
export interface Session {
  token: string;
  expires_at: number;
  user: SessionUser;
}

export interface Account {
  id: string;
  username: string;
  role: Role;
  created_at: number;
}

export interface Profile {
  id: string;
  username: string;
  role: Role;
  first_name: string;
  last_name: string;
  email: string;
  address: string;
  created_at: number;
  updated_at: number;
}

export interface Device {
  id: string;
  name: string;
  description: string;
  address: string;
  max_hourly_kwh: number;
  energy_class: EnergyClass | null;
  owner_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface List<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface Credentials {
  username: string;
  password: string;
}

export interface ProfileFields {
  first_name: string;
  last_name: string;
  email: string;
  address?: string;
}

export type Registration = Credentials & ProfileFields;

export type NewAccount = Registration & { role: Role };

export interface AccountPatch {
  username?: string;
  password?: string;
  role?: Role;
}

export type ProfilePatch = Partial<ProfileFields>;

export interface DeviceFields {
  name: string;
  max_hourly_kwh: number;
  description?: string;
  address?: string;
  energy_class?: EnergyClass | null;
}

export type NewDevice = DeviceFields & { owner_id?: string };

export type DevicePatch = Partial<DeviceFields>;

export interface Paging {
  limit?: number;
  offset?: number;
}

export interface UserQuery extends Paging {
  q?: string;
}

export interface DeviceQuery extends Paging {
  owner?: string;
  unassigned?: boolean;
}
