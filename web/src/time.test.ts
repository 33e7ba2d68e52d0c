// Days and zones: calendar arithmetic without DST traps, the local day somewhere, and labels that
// tell the two 02:00 hours of the day clocks go back apart.
import { describe, expect, it } from 'vitest';
import { addDays, dateIn, daysBetween, formatHourIn, hourLabels, isDate, isValidTimeZone, zoneChoices } from './time';

describe('time', () => {
  it('checks calendar dates', () => {
    expect(isDate('2026-02-28')).toBe(true);
    expect(isDate('2024-02-29')).toBe(true);
    expect(isDate('2026-02-29')).toBe(false);
    expect(isDate('2026-13-01')).toBe(false);
    expect(isDate('26-1-1')).toBe(false);
    expect(isDate(null)).toBe(false);
  });

  it('moves by whole days across month, year and DST changes', () => {
    expect(addDays('2026-03-29', 1)).toBe('2026-03-30');
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
    expect(addDays('2026-12-31', 1)).toBe('2027-01-01');
    expect(addDays('2026-10-25', -1)).toBe('2026-10-24');
    expect(daysBetween('2026-11-20', '2026-11-26')).toBe(6);
    expect(daysBetween('2026-11-26', '2026-11-20')).toBe(-6);
  });

  it('tells the local day of an instant in a zone', () => {
    const instant = Date.UTC(2026, 10, 26, 22, 30); // 22:30 UTC
    expect(dateIn('UTC', instant)).toBe('2026-11-26');
    expect(dateIn('Europe/Bucharest', instant)).toBe('2026-11-27');
    expect(dateIn('America/New_York', instant)).toBe('2026-11-26');
    expect(dateIn('Asia/Kathmandu', Date.UTC(2026, 10, 26, 18, 15))).toBe('2026-11-27');
  });

  it('labels hours, with the offset only for a repeated hour', () => {
    expect(hourLabels(['2026-11-26T00:00:00+02:00', '2026-11-26T01:00:00+02:00'])).toEqual(['00:00', '01:00']);
    expect(
      hourLabels([
        '2026-10-25T02:00:00+03:00',
        '2026-10-25T03:00:00+03:00',
        '2026-10-25T03:00:00+02:00',
        '2026-10-25T04:00:00+02:00',
      ]),
    ).toEqual(['02:00', '03:00 +03:00', '03:00 +02:00', '04:00']);
  });

  it('formats an alert hour in a zone', () => {
    expect(formatHourIn(Date.UTC(2026, 10, 26, 12), 'Europe/Bucharest').hours).toBe('14:00–15:00');
    expect(formatHourIn(Date.UTC(2026, 10, 26, 12), 'Asia/Kolkata').hours).toBe('17:30–18:30');
  });

  it('knows IANA zones and offers the browser zone first', () => {
    expect(isValidTimeZone('Europe/Bucharest')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus')).toBe(false);
    expect(isValidTimeZone('')).toBe(false);
    const zones = zoneChoices('Africa/Nairobi', 'America/Lima');
    expect(zones[0]).toBe('America/Lima');
    expect(zones).toContain('Africa/Nairobi');
    expect(zoneChoices('UTC').filter((z) => z === 'UTC')).toHaveLength(1);
  });
});
