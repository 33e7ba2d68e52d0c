// Days and time zones. A day is a "YYYY-MM-DD" string in some IANA zone, as the consumption API
// takes it; the server computes the zone's hours (23 or 25 on DST days), so the app never does
// offset arithmetic itself: it asks Intl which day it is somewhere, and moves dates by whole days
// on the UTC calendar, where every day has 24 hours.

/** Zones offered in the pickers, west to east; the browser's own zone is added when missing. */
export const COMMON_TIME_ZONES = [
  'Pacific/Honolulu',
  'America/Los_Angeles',
  'America/Denver',
  'America/Chicago',
  'America/New_York',
  'America/Sao_Paulo',
  'UTC',
  'Europe/London',
  'Europe/Lisbon',
  'Europe/Paris',
  'Europe/Berlin',
  'Europe/Bucharest',
  'Europe/Athens',
  'Europe/Istanbul',
  'Europe/Moscow',
  'Asia/Dubai',
  'Asia/Kolkata',
  'Asia/Kathmandu',
  'Asia/Shanghai',
  'Asia/Tokyo',
  'Australia/Sydney',
  'Pacific/Auckland',
] as const;

const DAY_MS = 86_400_000;

/**
 * Formatters made once per zone and kept: building an Intl.DateTimeFormat costs far more than
 * using one, and a month's page formats dozens of days on every render.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(key: string, locale: string | undefined, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(locale, options);
    formatters.set(key, f);
  }
  return f;
}
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function isValidTimeZone(tz: string): boolean {
  if (!tz) return false;
  if (formatters.has(`date ${tz}`)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The browser's zone (Intl), or UTC when the browser does not say. */
export function browserTimeZone(): string {
  try {
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    return tz && isValidTimeZone(tz) ? tz : 'UTC';
  } catch {
    return 'UTC';
  }
}

/** The common zones plus the given ones (the browser's, the one in the address), without repeats. */
export function zoneChoices(...extra: string[]): string[] {
  const zones: string[] = [...COMMON_TIME_ZONES];
  for (const tz of extra) if (tz && !zones.includes(tz)) zones.unshift(tz);
  return zones;
}

/** "Europe/Bucharest" reads "Europe / Bucharest", "America/New_York" "America / New York". */
export const zoneLabel = (tz: string) => tz.replace(/_/g, ' ').replace(/\//g, ' / ');

/** True for a real calendar date "YYYY-MM-DD" (no 2026-02-30). */
export function isDate(value: string | null | undefined): value is string {
  const m = value ? DATE_RE.exec(value) : null;
  if (!m) return false;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return new Date(ms).toISOString().slice(0, 10) === value;
}

function utcMs(date: string): number {
  const m = DATE_RE.exec(date);
  if (!m) throw new RangeError(`not a date: ${date}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
}

/** The date `days` days after (or before) `date`. */
export function addDays(date: string, days: number): string {
  return new Date(utcMs(date) + days * DAY_MS).toISOString().slice(0, 10);
}

/** Whole days from `from` to `to` (negative when `to` is earlier). */
export function daysBetween(from: string, to: string): number {
  return Math.round((utcMs(to) - utcMs(from)) / DAY_MS);
}

/** The local date in `tz` at the instant `ms` (default now). */
export function dateIn(tz: string, ms: number = Date.now()): string {
  const parts = formatter(`date ${tz}`, 'en-US', {
    timeZone: tz,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).formatToParts(new Date(ms));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** "Thursday, 26 November 2026" in the user's language. */
export function formatDay(date: string): string {
  return formatter('day long', undefined, {
    timeZone: 'UTC',
    weekday: 'long',
    year: 'numeric',
    month: 'long',
    day: 'numeric',
  }).format(new Date(utcMs(date)));
}

/** "14:00" of a local ISO-8601 hour start as the API sends it ("2026-11-26T14:00:00+02:00"). */
export const clockOf = (start: string) => start.slice(11, 16);

/** The offset of a local ISO-8601 time ("+02:00"). */
export const offsetOf = (start: string) => start.slice(19) || 'Z';

/**
 * Labels for a day's hours: "14:00", and on the day clocks go back, the repeated hour twice with
 * its offset ("02:00 +03:00", "02:00 +02:00") so the two can be told apart.
 */
export function hourLabels(starts: string[]): string[] {
  const clocks = starts.map(clockOf);
  return starts.map((start, i) =>
    clocks.indexOf(clocks[i]) !== clocks.lastIndexOf(clocks[i]) ? `${clocks[i]} ${offsetOf(start)}` : clocks[i],
  );
}

/** An epoch-ms hour as "26 Nov 2026" and "14:00–15:00" in `tz`. */
export function formatHourIn(ms: number, tz: string): { day: string; hours: string } {
  const clock = formatter(`clock ${tz}`, 'en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const day = formatter(`day ${tz}`, undefined, { timeZone: tz, year: 'numeric', month: 'short', day: 'numeric' });
  return {
    day: day.format(new Date(ms)),
    hours: `${clock.format(new Date(ms))}–${clock.format(new Date(ms + 3_600_000))}`,
  };
}

const MONTH_RE = /^(\d{4})-(\d{2})$/;

/** True for a month "YYYY-MM". */
export function isMonth(value: string | null | undefined): value is string {
  const m = value ? MONTH_RE.exec(value) : null;
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 12;
}

/** The month "YYYY-MM" of a date. */
export const monthOf = (date: string) => date.slice(0, 7);

/** The first and the last date of a month. */
export function monthDays(month: string): { first: string; last: string } {
  const [y, m] = month.split('-').map(Number);
  return { first: `${month}-01`, last: new Date(Date.UTC(y, m, 0)).toISOString().slice(0, 10) };
}

/** The month `months` months after (or before) `month`. */
export function addMonths(month: string, months: number): string {
  const [y, m] = month.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1 + months, 1)).toISOString().slice(0, 7);
}

/** "November 2026" in the user's language. */
export function formatMonth(month: string): string {
  const [y, m] = month.split('-').map(Number);
  return formatter('month', undefined, { timeZone: 'UTC', year: 'numeric', month: 'long' }).format(new Date(Date.UTC(y, m - 1, 1)));
}

/** "Thu, Nov 26" for a date, as the month's table and chart name a day. */
export function formatDayShort(date: string): string {
  return formatter('day short', undefined, { timeZone: 'UTC', weekday: 'short', month: 'short', day: 'numeric' }).format(new Date(utcMs(date)));
}
