// The controls above the consumption and alert pages: a day (a calendar input between previous
// and next buttons), a month (the same, for the consumption page's month view) and a time zone
// (the common zones, the browser's own first).
import { useId, type ReactNode } from 'react';
import { addDays, addMonths, isDate, isMonth, zoneChoices, zoneLabel } from '../time';

/** A calendar input between previous and next buttons; next is disabled at the latest allowed value. */
function Stepper({
  label,
  unit,
  atMax,
  onStep,
  children,
}: {
  label: string;
  /** What a step moves by, as the buttons name it: "Previous day". */
  unit: string;
  atMax: boolean;
  onStep: (by: -1 | 1) => void;
  /** The input, with the id from `useId` that the label points at. */
  children: (id: string) => ReactNode;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <div className="day-picker">
        <button type="button" className="button icon-step" aria-label={`Previous ${unit}`} onClick={() => onStep(-1)}>
          ‹
        </button>
        {children(id)}
        <button type="button" className="button icon-step" aria-label={`Next ${unit}`} disabled={atMax} onClick={() => onStep(1)}>
          ›
        </button>
      </div>
    </div>
  );
}

export function DayPicker({ date, max, onChange }: { date: string; max?: string; onChange: (date: string) => void }) {
  return (
    <Stepper label="Day" unit="day" atMax={max !== undefined && date >= max} onStep={(by) => onChange(addDays(date, by))}>
      {(id) => (
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
      )}
    </Stepper>
  );
}

export function MonthPicker({ month, max, onChange }: { month: string; max?: string; onChange: (month: string) => void }) {
  return (
    <Stepper label="Month" unit="month" atMax={max !== undefined && month >= max} onStep={(by) => onChange(addMonths(month, by))}>
      {(id) => (
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
      )}
    </Stepper>
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
