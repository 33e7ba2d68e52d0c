// The daily bar chart of one month, drawn as inline SVG like the hourly one (HourlyChart's
// geometry): one bar per local day, kWh on a Y axis with round ticks, the peak day in the accent
// colour. A day's bar opens that day (mouse or touch); the page's table below the chart offers the
// same as links for the keyboard. The SVG is an image with a spoken summary.
import { chartGeometry } from './HourlyChart';

export interface ChartDay {
  date: string;
  kwh: number;
  /** What the bar says on hover: "Thu 26: 12.5 kWh". */
  title: string;
}

const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });

interface DailyChartProps {
  days: ChartDay[];
  /** The month drawn ("2026-11"), for tests and the benchmark to tell a new month is drawn. */
  month: string;
  label: string;
  /** The peak day, drawn in the accent colour. */
  peak?: string | null;
  onOpenDay?: (date: string) => void;
}

export function DailyChart({ days, month, label, peak, onOpenDay }: DailyChartProps) {
  const g = chartGeometry(
    days.map((d) => ({ label: d.date, kwh: d.kwh })),
    0,
  );
  const { plot } = g;
  return (
    <figure className="chart">
      <div className="chart-scroll">
        <svg
          className="chart-svg"
          viewBox={`0 0 ${g.width} ${g.height}`}
          role="img"
          aria-label={label}
          data-testid="daily-chart"
          data-month={month}
          preserveAspectRatio="xMidYMid meet"
        >
          <text className="chart-unit" x={plot.left - 8} y={plot.top - 12} textAnchor="end">
            kWh
          </text>
          {g.ticks.map((tick) => (
            <g key={tick.value} className="chart-tick">
              <line x1={plot.left} x2={plot.right} y1={tick.y} y2={tick.y} className="chart-grid" />
              <text x={plot.left - 8} y={tick.y} dy="0.35em" textAnchor="end">
                {number.format(tick.value)}
              </text>
            </g>
          ))}
          {g.bars.map((bar, i) => {
            const day = days[i];
            return (
              <g
                key={day.date}
                className={onOpenDay ? 'chart-day chart-day-open' : 'chart-day'}
                data-date={day.date}
                onClick={onOpenDay ? () => onOpenDay(day.date) : undefined}
              >
                {/* The whole column is the target, so a day with little energy is still easy to hit. */}
                <rect className="chart-hit" x={bar.center - (bar.width / 0.72) / 2} y={plot.top} width={bar.width / 0.72} height={plot.bottom - plot.top} />
                <rect
                  className={day.date === peak && day.kwh > 0 ? 'chart-bar chart-bar-peak' : 'chart-bar'}
                  x={bar.x}
                  y={bar.y}
                  width={bar.width}
                  height={bar.height}
                  rx={Math.min(3, bar.width / 4)}
                >
                  <title>{day.title}</title>
                </rect>
                <text className="chart-hour" x={bar.center} y={plot.bottom + 18} textAnchor="middle">
                  {Number(day.date.slice(8, 10))}
                </text>
              </g>
            );
          })}
          <line className="chart-axis" x1={plot.left} x2={plot.right} y1={plot.bottom} y2={plot.bottom} />
        </svg>
      </div>
      <figcaption className="chart-legend">
        <span>
          <i className="swatch swatch-bar" aria-hidden="true" /> Energy per day
        </span>
        <span>
          <i className="swatch swatch-peak" aria-hidden="true" /> Peak day
        </span>
        {onOpenDay ? <span className="muted">Click a day to see its hours</span> : null}
      </figcaption>
    </figure>
  );
}
