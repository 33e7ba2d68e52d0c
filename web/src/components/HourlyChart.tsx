// The hourly bar chart of one local day, drawn as inline SVG: one bar per hour (23, 24 or 25),
// kWh on a Y axis with round ticks, the device's hourly limit as a dashed line, and the hours
// over it in the danger colour. The geometry is a pure function so tests can check it; the SVG
// is an image with a spoken summary, the page's hourly table carries the numbers.
import { ChartFrame, chartNumber, LegendItem } from './ChartFrame';

export interface ChartHour {
  /** "14:00", or "02:00 +03:00" for a repeated hour. */
  label: string;
  kwh: number;
}

export interface ChartBar {
  x: number;
  y: number;
  width: number;
  height: number;
  /** Where the hour's tick label sits. */
  center: number;
  over: boolean;
  label: string;
  kwh: number;
}

export interface ChartGeometry {
  width: number;
  height: number;
  plot: { left: number; top: number; right: number; bottom: number };
  bars: ChartBar[];
  /** The top of the Y axis, in kWh. */
  max: number;
  ticks: { value: number; y: number }[];
  /** Y of the limit line; null when the device has no positive limit. */
  limitY: number | null;
}

export const CHART_WIDTH = 720;
export const CHART_HEIGHT = 300;
const MARGIN = { left: 52, top: 28, right: 16, bottom: 36 };
const TICKS = 5;

/** A round step (1, 2, 2.5 or 5 times a power of ten) that cuts `span` into about `count` parts. */
export function niceStep(span: number, count = TICKS): number {
  if (!(span > 0)) return 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].find((m) => m * power >= raw) ?? 10;
  return step * power;
}

export function chartGeometry(hours: ChartHour[], limit: number, width = CHART_WIDTH, height = CHART_HEIGHT): ChartGeometry {
  const plot = { left: MARGIN.left, top: MARGIN.top, right: width - MARGIN.right, bottom: height - MARGIN.bottom };
  const peak = hours.reduce((m, h) => Math.max(m, h.kwh), 0);
  const highest = Math.max(peak, limit > 0 ? limit : 0);
  const step = niceStep(highest * 1.05);
  const max = Math.max(step, Math.ceil((highest * 1.05) / step - 1e-9) * step);
  const scale = (kwh: number) => plot.bottom - (kwh / max) * (plot.bottom - plot.top);

  const slot = (plot.right - plot.left) / Math.max(1, hours.length);
  const barWidth = slot * 0.72;
  const bars = hours.map((hour, i) => {
    const y = scale(Math.max(0, hour.kwh));
    return {
      x: plot.left + i * slot + (slot - barWidth) / 2,
      y,
      width: barWidth,
      height: plot.bottom - y,
      center: plot.left + i * slot + slot / 2,
      over: limit > 0 && hour.kwh > limit,
      label: hour.label,
      kwh: hour.kwh,
    };
  });

  const ticks = [];
  for (let value = 0; value <= max + step / 1e6; value += step) {
    ticks.push({ value: Number(value.toPrecision(12)), y: scale(value) });
  }
  return { width, height, plot, bars, max, ticks, limitY: limit > 0 ? scale(limit) : null };
}

interface HourlyChartProps {
  hours: ChartHour[];
  limit: number;
  /** The spoken summary of the image (role="img"). */
  label: string;
  /** The day drawn, as data-date (tests and the benchmark tell a new day is drawn by it). */
  date?: string;
}

export function HourlyChart({ hours, limit, label, date }: HourlyChartProps) {
  const g = chartGeometry(hours, limit);
  const { plot } = g;
  return (
    <ChartFrame
      g={g}
      label={label}
      data={{ 'data-testid': 'hourly-chart', 'data-date': date }}
      overlay={
        g.limitY !== null ? (
          <g className="chart-limit" data-testid="limit-line">
            <line x1={plot.left} x2={plot.right} y1={g.limitY} y2={g.limitY} />
            <text x={plot.right} y={g.limitY - 6} textAnchor="end">
              {`Limit ${chartNumber.format(limit)} kWh`}
            </text>
          </g>
        ) : null
      }
      legend={
        <>
          <LegendItem swatch="bar">Consumption</LegendItem>
          <LegendItem swatch="over">Over the limit</LegendItem>
          <LegendItem swatch="limit">Hourly limit</LegendItem>
        </>
      }
    >
      {g.bars.map((bar, i) => (
        <g key={`${bar.label}-${i}`}>
          <rect
            className={bar.over ? 'chart-bar chart-bar-over' : 'chart-bar'}
            x={bar.x}
            y={bar.y}
            width={bar.width}
            height={bar.height}
            rx={Math.min(3, bar.width / 4)}
          >
            <title>{`${bar.label}: ${chartNumber.format(bar.kwh)} kWh${bar.over ? ' (over the limit)' : ''}`}</title>
          </rect>
          <text className="chart-hour" x={bar.center} y={plot.bottom + 18} textAnchor="middle">
            {bar.label.slice(0, 2)}
          </text>
        </g>
      ))}
    </ChartFrame>
  );
}
