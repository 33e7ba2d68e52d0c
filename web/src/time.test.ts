// Days and zones: calendar arithmetic without DST traps, the local day somewhere, and labels that
// tell the two 02:00 hours of the day clocks go back apart.
import { describe, expect, it } from 'vitest';
import { addDays, addMonths, dateIn, daysBetween, formatHourIn, hourLabels, isDate, isMonth, isValidTimeZone, monthDays, zoneChoices } from './time';
import { dayInMonth } from './pages/Consumption';

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

describe('months', () => {
  it('knows each month’s first and last day, leap years included, and steps across years', () => {
    expect(monthDays('2028-02')).toEqual({ first: '2028-02-01', last: '2028-02-29' });
    expect(monthDays('2026-02').last).toBe('2026-02-28');
    expect(monthDays('2026-12').last).toBe('2026-12-31');
    expect(addMonths('2026-12', 1)).toBe('2027-01');
    expect(addMonths('2026-01', -1)).toBe('2025-12');
    expect(isMonth('2026-11')).toBe(true);
    expect(isMonth('2026-13')).toBe(false);
    expect(isMonth('2026-1')).toBe(false);
  });

  it('keeps the day of the month when moving to another month, within it and never after today', () => {
    expect(dayInMonth('2026-10-31', '2026-09', '2026-11-27')).toBe('2026-09-30');
    expect(dayInMonth('2026-10-14', '2026-09', '2026-11-27')).toBe('2026-09-14');
    expect(dayInMonth('2026-10-30', '2026-11', '2026-11-27')).toBe('2026-11-27');
  });
});
