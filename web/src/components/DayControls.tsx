// The controls above the consumption and alert pages: a day (a calendar input between previous
// and next buttons), a month (the same, for the consumption page's month view) and a time zone
// (the common zones, the browser's own first).
import { useId } from 'react';
import { addDays, addMonths, isDate, isMonth, zoneChoices, zoneLabel } from '../time';

export function DayPicker({ date, max, onChange }: { date: string; max?: string; onChange: (date: string) => void }) {
  const id = useId();
  const atMax = max !== undefined && date >= max;
  return (
    <div className="field">
      <label htmlFor={id}>Day</label>
      <div className="day-picker">
        <button
          type="button"
          className="button icon-step"
          aria-label="Previous day"
          onClick={() => onChange(addDays(date, -1))}
        >
          ‹
        </button>
        <input
          id={id}
          type="date"
          value={date}
          max={max}
          required
          onChange={(event) => {
            if (isDate(event.target.value)) onChange(event.target.value);
          }}
        />
        <button
          type="button"
          className="button icon-step"
          aria-label="Next day"
          disabled={atMax}
          onClick={() => onChange(addDays(date, 1))}
        >
          ›
        </button>
      </div>
    </div>
  );
}

export function MonthPicker({ month, max, onChange }: { month: string; max?: string; onChange: (month: string) => void }) {
  const id = useId();
  const atMax = max !== undefined && month >= max;
  return (
    <div className="field">
      <label htmlFor={id}>Month</label>
      <div className="day-picker">
        <button type="button" className="button icon-step" aria-label="Previous month" onClick={() => onChange(addMonths(month, -1))}>
          ‹
        </button>
        <input
          id={id}
          type="month"
          value={month}
          max={max}
          required
          onChange={(event) => {
            if (isMonth(event.target.value) && (max === undefined || event.target.value <= max)) onChange(event.target.value);
          }}
        />
        <button
          type="button"
          className="button icon-step"
          aria-label="Next month"
          disabled={atMax}
          onClick={() => onChange(addMonths(month, 1))}
        >
          ›
        </button>
      </div>
    </div>
  );
}

/** Day or month: which view of the consumption page is shown. */
export function ViewSwitch({ view, onChange }: { view: 'day' | 'month'; onChange: (view: 'day' | 'month') => void }) {
  return (
    <div className="field field-view">
      <span className="field-label" id="view-switch-label">
        View
      </span>
      <div className="segmented" role="group" aria-labelledby="view-switch-label">
        <button type="button" aria-pressed={view === 'day'} onClick={() => onChange('day')}>
          Day
        </button>
        <button type="button" aria-pressed={view === 'month'} onClick={() => onChange('month')}>
          Month
        </button>
      </div>
    </div>
  );
}

export function TimeZoneSelect({
  value,
  browserZone,
  onChange,
}: {
  value: string;
  browserZone: string;
  onChange: (tz: string) => void;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>Time zone</label>
      <select id={id} value={value} onChange={(event) => onChange(event.target.value)}>
        {zoneChoices(value, browserZone).map((tz) => (
          <option key={tz} value={tz}>
            {tz === browserZone ? `${zoneLabel(tz)} (this device)` : zoneLabel(tz)}
          </option>
        ))}
      </select>
    </div>
  );
}
