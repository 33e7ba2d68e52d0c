// What the hourly and the daily bar charts share around their bars: the figure with its legend,
// the SVG image with its spoken summary, the kWh unit, the Y axis's round ticks with their grid
// lines, and the X axis line.
import type { ReactNode } from 'react';
import type { ChartGeometry } from './HourlyChart';

export const chartNumber = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });

interface ChartFrameProps {
  g: ChartGeometry;
  /** The spoken summary of the image (role="img"). */
  label: string;
  /** data-* attributes of the SVG, by which tests and the benchmark find the chart drawn. */
  data: Record<`data-${string}`, string | undefined>;
  /** The bars, drawn over the grid and under the X axis. */
  children: ReactNode;
  /** Drawn over the X axis (the hourly limit line). */
  overlay?: ReactNode;
  legend: ReactNode;
}

export function ChartFrame({ g, label, data, children, overlay, legend }: ChartFrameProps) {
  const { plot } = g;
  return (
    <figure className="chart">
      <div className="chart-scroll">
        <svg
          className="chart-svg"
          viewBox={`0 0 ${g.width} ${g.height}`}
          role="img"
          aria-label={label}
          {...data}
          preserveAspectRatio="xMidYMid meet"
        >
          <text className="chart-unit" x={plot.left - 8} y={plot.top - 12} textAnchor="end">
            kWh
          </text>
          {g.ticks.map((tick) => (
            <g key={tick.value} className="chart-tick">
              <line x1={plot.left} x2={plot.right} y1={tick.y} y2={tick.y} className="chart-grid" />
              <text x={plot.left - 8} y={tick.y} dy="0.35em" textAnchor="end">
                {chartNumber.format(tick.value)}
              </text>
            </g>
          ))}
          {children}
          <line className="chart-axis" x1={plot.left} x2={plot.right} y1={plot.bottom} y2={plot.bottom} />
          {overlay}
        </svg>
      </div>
      <figcaption className="chart-legend">{legend}</figcaption>
    </figure>
  );
}

/** One entry of a chart's legend: its colour swatch and what it means. */
export function LegendItem({ swatch, children }: { swatch: string; children: ReactNode }) {
  return (
    <span>
      <i className={`swatch swatch-${swatch}`} aria-hidden="true" /> {children}
    </span>
  );
}
