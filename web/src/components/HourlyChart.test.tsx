// The hourly chart: one bar per local hour (23, 24 or 25), the limit line where the limit is on
// the Y scale, the hours over the limit highlighted, and a spoken summary for screen readers.
import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { chartGeometry, HourlyChart, niceStep, type ChartHour } from './HourlyChart';

const day = (n: number, kwh: (i: number) => number = () => 1): ChartHour[] =>
  Array.from({ length: n }, (_, i) => ({ label: `${String(i).padStart(2, '0')}:00`, kwh: kwh(i) }));

function draw(hours: ChartHour[], limit: number) {
  const { container } = render(<HourlyChart hours={hours} limit={limit} label="Consumption on a test day" />);
  return {
    bars: Array.from(container.querySelectorAll('rect.chart-bar')),
    over: Array.from(container.querySelectorAll('rect.chart-bar-over')),
    limitLine: container.querySelector('[data-testid="limit-line"] line'),
    hourLabels: Array.from(container.querySelectorAll('text.chart-hour')).map((t) => t.textContent),
  };
}

describe('HourlyChart', () => {
  it.each([23, 24, 25])('draws one bar and one hour label per hour on a %i-hour day', (n) => {
    const { bars, hourLabels } = draw(day(n), 2);
    expect(bars).toHaveLength(n);
    expect(hourLabels).toHaveLength(n);
    expect(hourLabels[0]).toBe('00');
  });

  it('places the limit line at the limit on the Y scale', () => {
    const hours = day(24, (i) => (i === 10 ? 4 : 1));
    const g = chartGeometry(hours, 2);
    const { limitLine } = draw(hours, 2);
    expect(g.max).toBe(5);
    // plot from y=28 (5 kWh) to y=264 (0 kWh): 2 kWh is 2/5 of the way up
    expect(g.plot).toMatchObject({ top: 28, bottom: 264 });
    expect(g.limitY).toBeCloseTo(264 - (2 / 5) * 236, 6);
    expect(Number(limitLine?.getAttribute('y1'))).toBeCloseTo(g.limitY as number, 6);
    expect(limitLine?.getAttribute('y2')).toBe(limitLine?.getAttribute('y1'));
    expect(screen.getByText('Limit 2 kWh')).toBeTruthy();
  });

  it('keeps the limit line inside the plot when every hour is far below it', () => {
    const g = chartGeometry(day(24, () => 0.1), 3.5);
    expect(g.limitY).not.toBeNull();
    expect(g.limitY as number).toBeGreaterThanOrEqual(g.plot.top);
    expect(g.max).toBeGreaterThanOrEqual(3.5);
  });

  it('highlights exactly the hours over the limit, not those at it', () => {
    const hours = day(24, (i) => (i === 3 ? 2.5 : i === 7 ? 2 : i === 20 ? 3.25 : 1));
    const { bars, over } = draw(hours, 2);
    expect(over).toHaveLength(2);
    expect(bars.indexOf(over[0])).toBe(3);
    expect(bars.indexOf(over[1])).toBe(20);
    expect(over[0].querySelector('title')?.textContent).toContain('over the limit');
  });

  it('makes bars proportional to kWh and ticks round numbers from zero', () => {
    const g = chartGeometry(day(24, (i) => i / 10), 1);
    const full = g.plot.bottom - g.plot.top;
    expect(g.bars[23].height).toBeCloseTo((2.3 / g.max) * full, 6);
    expect(g.bars[0].height).toBe(0);
    expect(g.ticks[0]).toEqual({ value: 0, y: g.plot.bottom });
    expect(g.ticks.map((t) => t.value)).toEqual([0, 0.5, 1, 1.5, 2, 2.5]);
  });

  it('draws an empty scale and no limit line without data or limit', () => {
    const g = chartGeometry(day(24, () => 0), 0);
    expect(g.limitY).toBeNull();
    expect(g.max).toBe(1);
    expect(g.bars.every((b) => b.height === 0 && !b.over)).toBe(true);
  });

  it('is an image with the given spoken summary', () => {
    draw(day(24), 2);
    expect(screen.getByRole('img', { name: 'Consumption on a test day' })).toBeTruthy();
  });

  it('picks steps of 1, 2, 2.5 or 5 times a power of ten', () => {
    expect(niceStep(5)).toBe(1);
    expect(niceStep(9)).toBe(2);
    expect(niceStep(0.42)).toBe(0.1);
    expect(niceStep(1200)).toBe(250);
    expect(niceStep(0)).toBe(1);
  });
});
