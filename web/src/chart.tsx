/** ECharts, tree-shaken to the charts the dashboard draws, rendered as SVG (crisp in print). */
import { BarChart, LineChart, SankeyChart, TreeChart } from 'echarts/charts';
import { GridComponent, LegendComponent, MarkAreaComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { SVGRenderer } from 'echarts/renderers';
import { useEffect, useRef } from 'react';

echarts.use([BarChart, LineChart, SankeyChart, TreeChart, GridComponent, LegendComponent, MarkAreaComponent, TooltipComponent, SVGRenderer]);

export type ChartOption = echarts.EChartsCoreOption;

export function Chart({ option, height = 260, label, onClick }: { option: ChartOption; height?: number; label: string; onClick?: (params: { name?: string; data?: unknown }) => void }) {
  const element = useRef<HTMLDivElement>(null);
  const chart = useRef<echarts.ECharts | null>(null);
  useEffect(() => {
    if (!element.current) return;
    const instance = echarts.init(element.current, null, { renderer: 'svg' });
    chart.current = instance;
    const observer = new ResizeObserver(() => instance.resize());
    observer.observe(element.current);
    return () => {
      observer.disconnect();
      instance.dispose();
      chart.current = null;
    };
  }, []);
  useEffect(() => {
    chart.current?.setOption({ animation: false, ...option }, true);
  }, [option]);
  useEffect(() => {
    const instance = chart.current;
    if (!instance || !onClick) return;
    instance.on('click', onClick as never);
    return () => {
      instance.off('click');
    };
  }, [onClick]);
  return <div ref={element} className="chart" style={{ height }} role="img" aria-label={label} />;
}

export const LAYER_COLORS: Record<string, string> = { core: '#4f46e5', backbone: '#0891b2', general: '#16a34a', observation: '#d97706', unfollowed: '#9ca3af', new: '#64748b' };
