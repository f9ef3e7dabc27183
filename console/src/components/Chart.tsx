/**
 * Time charts with uPlot: bars of counts per bucket, an optional horizontal threshold line
 * and an optional shaded window. The figure carries a text summary for screen readers.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface BarSeries {
  label: string;
  values: number[];
  color: string;
}

export interface ChartProps {
  /** Bucket starts, epoch ms. */
  x: number[];
  series: BarSeries[];
  threshold?: { value: number; label: string } | null;
  window?: { start: number; end: number } | null;
  height?: number;
  label: string;
  testId?: string;
}

const bars = uPlot.paths.bars!({ size: [0.8, 60], align: 1 });

export function Chart(props: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const xs = props.x.map((t) => t / 1000);
    const data: uPlot.AlignedData = [xs, ...props.series.map((s) => s.values)];
    const series: uPlot.Series[] = [
      {},
      ...props.series.map((s) => ({
        label: s.label,
        stroke: s.color,
        fill: `${s.color}cc`,
        paths: bars,
        points: { show: false },
      })),
    ];
    if (props.threshold) {
      data.push(xs.map(() => props.threshold!.value));
      series.push({
        label: props.threshold.label,
        stroke: '#d6336c',
        width: 2,
        dash: [6, 4],
        points: { show: false },
      });
    }
    const shade = props.window;
    const plot = new uPlot(
      {
        width: Math.max(320, el.clientWidth),
        height: props.height ?? 180,
        series,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
        axes: [{ stroke: '#555' }, { stroke: '#555', size: 48 }],
        hooks: shade
          ? {
              drawClear: [
                (u) => {
                  const x0 = u.valToPos(shade.start / 1000, 'x', true);
                  const x1 = u.valToPos(shade.end / 1000, 'x', true);
                  u.ctx.save();
                  u.ctx.fillStyle = 'rgba(255, 196, 0, 0.18)';
                  u.ctx.fillRect(x0, u.bbox.top, Math.max(2, x1 - x0), u.bbox.height);
                  u.ctx.restore();
                },
              ],
            }
          : {},
      },
      data,
      el,
    );
    const resize = new ResizeObserver(() =>
      plot.setSize({ width: Math.max(320, el.clientWidth), height: props.height ?? 180 }),
    );
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [props.x, props.series, props.threshold, props.window, props.height]);
  const total = props.series.reduce((n, s) => n + s.values.reduce((a, b) => a + b, 0), 0);
  const peak = Math.max(0, ...props.series.flatMap((s) => s.values));
  return (
    <figure class="chart" data-testid={props.testId}>
      <div
        ref={box}
        role="img"
        aria-label={`${props.label}: ${total} in ${props.x.length} buckets, peak ${peak}${props.threshold ? `, threshold ${props.threshold.value}` : ''}`}
      />
      <figcaption>{props.label}</figcaption>
    </figure>
  );
}
