// The shapes of the EMS REST API (docs/api.md). Times are epoch milliseconds (UTC).
import type { ChatMessage } from '../live/state';

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

/** One local hour of a day: `start` is local ISO-8601 with its offset ("2026-03-29T03:00:00+03:00"). */
export interface HourKwh {
  start: string;
  kwh: number;
}

/** GET /api/consumption/{device_id}: one local day, 23, 24 or 25 hours. */
export interface DayConsumption {
  device_id: string;
  date: string;
  tz: string;
  unit: 'kWh';
  hours: HourKwh[];
  total_kwh: number;
  average_kwh: number;
  peak: HourKwh;
  limit_kwh: number;
}

/** One local day's total, as GET /api/consumption/{device_id}/days lists them. */
export interface DayKwh {
  date: string;
  kwh: number;
}

/** GET /api/consumption/{device_id}/days?from=&to=&tz=: the local days from..to (at most 366). */
export interface DaysConsumption {
  device_id: string;
  from: string;
  to: string;
  tz: string;
  unit: 'kWh';
  days: DayKwh[];
  total_kwh: number;
  average_kwh: number;
  peak: DayKwh | null;
  limit_kwh: number;
}

export interface CsvRange {
  from: string;
  to: string;
  tz: string;
}

/** An overconsumption alert: one device went over its limit in one UTC hour. */
export interface Alert {
  device_id: string;
  device_name: string | null;
  hour_start: number;
  total_kwh: number;
  limit_kwh: number;
  created_at: number;
}

/** GET /api/alerts answers without a total: a page is full when there may be more. */
export interface AlertList {
  items: Alert[];
  limit: number;
  offset: number;
}

export interface AlertQuery extends Paging {
  device_id?: string;
}

export type SupportSource = 'rule' | 'llm' | 'fallback';

export interface SupportAnswer {
  reply: string;
  source: SupportSource;
  rule?: string;
}

/** GET /api/config: where the WebSocket is (absolute, or a path on this page's host). */
export interface AppConfig {
  version: string;
  mode: string;
  ws_url: string;
}

/** GET /api/chat/conversations/{peer}/messages: a page of history, oldest first. */
export interface ChatPage {
  conversation: string;
  items: ChatMessage[];
  has_more: boolean;
}
