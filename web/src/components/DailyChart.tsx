// The daily bar chart of one month, drawn as inline SVG like the hourly one (HourlyChart's
// geometry): one bar per local day, kWh on a Y axis with round ticks, the peak day in the accent
// colour. A day's bar opens that day (mouse or touch); the page's table below the chart offers the
// same as links for the keyboard. The SVG is an image with a spoken summary.
import { ChartFrame, LegendItem } from './ChartFrame';
import { chartGeometry } from './HourlyChart';

export interface ChartDay {
  date: string;
  kwh: number;
  /** What the bar says on hover: "Thu 26: 12.5 kWh". */
  title: string;
}

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
    <ChartFrame
      g={g}
      label={label}
      data={{ 'data-testid': 'daily-chart', 'data-month': month }}
      legend={
        <>
          <LegendItem swatch="bar">Energy per day</LegendItem>
          <LegendItem swatch="peak">Peak day</LegendItem>
          {onOpenDay ? <span className="muted">Click a day to see its hours</span> : null}
        </>
      }
    >
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
    </ChartFrame>
  );
}
