/** Overview: pyramid, levels, indicator cards with a 12-month trend, maturity, signals, growth. */
import { useMemo } from 'react';
import { api, type MonthlyReport, type TrendPoint } from '../api.js';
import { Chart, LAYER_COLORS, type ChartOption } from '../chart.js';
import { useI18n, type I18n } from '../i18n/index.js';
import { Link, navigate } from '../router.js';
import { Async, Badge, Card, useLoad } from '../ui.js';

const LAYERS = ['core', 'backbone', 'general', 'observation'] as const;

/** Where a signal's "see them all" goes: the layer its list is drawn from. */
const SIGNAL_LAYER: Record<string, string> = {
  core_too_small: 'backbone',
  backbone_too_small: 'general',
  observation_too_large: 'observation',
  observation_high: 'observation',
  flow_not_smooth_core: 'backbone',
  flow_not_smooth_backbone: 'general',
  churn_core_high: 'core',
};

export function formatIndicator(i18n: I18n, id: string, value: number | null, currency: string): string {
  if (value === null) return i18n.t('na');
  if (id === 'nps') return i18n.number(value, 1);
  if (id === 'arpu' || id === 'ltv') return i18n.money(value, currency);
  return i18n.percent(value);
}

export function MonthPicker({ month, onChange }: { month: string; onChange: (month: string) => void }) {
  const { t } = useI18n();
  return (
    <label className="inline">
      {t('month')}{' '}
      <input type="month" value={month} onChange={(event) => event.target.value && onChange(event.target.value)} />
    </label>
  );
}

function pyramidOption(report: MonthlyReport, i18n: I18n): ChartOption {
  const rows = [...LAYERS].reverse();
  return {
    grid: { left: 110, right: 80, top: 10, bottom: 24 },
    tooltip: { trigger: 'item', formatter: (p: { name: string; value: number; dataIndex: number }) => `${p.name}: ${i18n.percent(p.value)} (${i18n.number(report.layers[rows[p.dataIndex]].count)}) · ${i18n.t('band', { band: report.layers[rows[p.dataIndex]].band ?? '' })}` },
    xAxis: { type: 'value', max: 1, axisLabel: { formatter: (v: number) => `${Math.round(v * 100)}%` } },
    yAxis: { type: 'category', data: rows.map((layer) => i18n.layer(layer)) },
    series: [
      {
        type: 'bar',
        data: rows.map((layer) => ({ value: report.layers[layer].share ?? 0, itemStyle: { color: LAYER_COLORS[layer], opacity: report.layers[layer].ok === false ? 0.55 : 1 } })),
        label: { show: true, position: 'right', formatter: (p: { value: number; dataIndex: number }) => `${i18n.percent(p.value)} ${report.layers[rows[p.dataIndex]].ok === false ? '✗' : '✓'}` },
        markArea: {
          silent: true,
          itemStyle: { color: 'rgba(79,70,229,0.08)' },
          data: rows.map((layer, index) => {
            const band = { core: [0.01, 0.05], backbone: [0.1, 0.2], general: [0.3, 0.5], observation: [0, 0.3] }[layer];
            return [{ xAxis: band[0], yAxis: index }, { xAxis: band[1], yAxis: index }];
          }),
        },
      },
    ],
  };
}

function levelsOption(report: MonthlyReport, i18n: I18n): ChartOption {
  const levels = ['1', '2', '3', '4', '5'];
  return {
    grid: { left: 50, right: 20, top: 20, bottom: 30 },
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'category', data: levels.map((level) => `Lv${level}`) },
    yAxis: { type: 'value', axisLabel: { formatter: (v: number) => i18n.number(v) } },
    series: [{ type: 'bar', data: levels.map((level) => report.levels[level] ?? 0), itemStyle: { color: '#6366f1' }, label: { show: true, position: 'top', formatter: (p: { value: number }) => i18n.number(p.value) } }],
  };
}

function growthOption(trend: TrendPoint[], i18n: I18n): ChartOption {
  return {
    grid: { left: 60, right: 60, top: 40, bottom: 30 },
    legend: { top: 0 },
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'category', data: trend.map((point) => point.month) },
    yAxis: [
      { type: 'value', axisLabel: { formatter: (v: number) => i18n.number(v) } },
      { type: 'value', max: 1, axisLabel: { formatter: (v: number) => `${Math.round(v * 100)}%` } },
    ],
    series: [
      { name: i18n.t('followers'), type: 'line', data: trend.map((point) => point.followers.end), itemStyle: { color: '#4f46e5' } },
      { name: i18n.t('newFollowers'), type: 'bar', data: trend.map((point) => point.followers.new), itemStyle: { color: '#a5b4fc' } },
      { name: i18n.t('selfGrowthShare'), type: 'line', yAxisIndex: 1, data: trend.map((point) => point.values.self_growth_share), itemStyle: { color: '#16a34a' } },
    ],
  };
}

function Sparkline({ values }: { values: (number | null)[] }) {
  const points = values.map((value, index) => [index, value] as const).filter((entry): entry is readonly [number, number] => entry[1] !== null);
  if (points.length < 2) return null;
  const min = Math.min(...points.map((p) => p[1]));
  const max = Math.max(...points.map((p) => p[1]));
  const x = (index: number) => (index / Math.max(1, values.length - 1)) * 100;
  const y = (value: number) => (max === min ? 12 : 22 - ((value - min) / (max - min)) * 20);
  return (
    <svg className="spark" viewBox="0 0 100 24" preserveAspectRatio="none" aria-hidden="true">
      <polyline fill="none" stroke="currentColor" strokeWidth="1.5" points={points.map(([index, value]) => `${x(index)},${y(value)}`).join(' ')} />
    </svg>
  );
}

export function Overview({ report, trend }: { report: MonthlyReport; trend: TrendPoint[] }) {
  const i18n = useI18n();
  const { t } = i18n;
  const pyramid = useMemo(() => pyramidOption(report, i18n), [report, i18n]);
  const levels = useMemo(() => levelsOption(report, i18n), [report, i18n]);
  const growth = useMemo(() => growthOption(trend, i18n), [trend, i18n]);
  return (
    <>
      <div className="kpis">
        <Card>
          <div className="kpi-label">{t('followers')}</div>
          <div className="kpi">{i18n.number(report.followers.end)}</div>
          <div className="muted">
            +{i18n.number(report.followers.new)} · −{i18n.number(report.followers.unfollows)}
          </div>
        </Card>
        <Card>
          <div className="kpi-label">{t('activeFans')}</div>
          <div className="kpi">{i18n.number(report.overview.activeFans)}</div>
        </Card>
        <Card>
          <div className="kpi-label">{t('revenue')}</div>
          <div className="kpi">{i18n.money(report.overview.revenue, report.currency)}</div>
        </Card>
        <Card>
          <div className="kpi-label">{t('maturity')}</div>
          <div className="kpi">{t('maturityLevel', { level: report.maturity.level })}</div>
        </Card>
      </div>
      <div className="grid two">
        <Card title={t('layerPyramid')}>
          <p className="muted">{t('layerPyramidHint')}</p>
          <Chart option={pyramid} label={t('layerPyramid')} height={220} onClick={(params) => navigate(`/fans?layer=${LAYERS[3 - ((params as { dataIndex?: number }).dataIndex ?? 0)]}`)} />
        </Card>
        <Card title={t('levels')}>
          <Chart option={levels} label={t('levels')} height={240} />
        </Card>
      </div>
      <Card title={`${t('indicators')} · ${t('trend12')}`}>
        <div className="indicators">
          {report.indicators.map((item) => (
            <div key={item.id} className={`indicator ${item.ok === null ? 'na' : item.ok ? 'ok' : 'bad'}`} data-indicator={item.id}>
              <div className="indicator-name">{i18n.indicator(item.id, item.label)}</div>
              <div className="indicator-value">{formatIndicator(i18n, item.id, item.value, report.currency)}</div>
              <div className="muted">{t('target', { target: item.target })}</div>
              <Sparkline values={trend.map((point) => point.values[item.id] ?? null)} />
            </div>
          ))}
        </div>
      </Card>
      <div className="grid two">
        <Card title={`${t('maturity')} · ${t('maturityLevel', { level: report.maturity.level })}`}>
          <table>
            <thead>
              <tr>
                <th>Lv</th>
                <th>{t('criterion')}</th>
                <th>{t('value')}</th>
                <th>{t('status')}</th>
              </tr>
            </thead>
            <tbody>
              {report.maturity.criteria.map((criterion) => (
                <tr key={`${criterion.level}-${criterion.id}`}>
                  <td>{criterion.level}</td>
                  <td>
                    {i18n.indicator(criterion.id, criterion.label)} <span className="muted">{criterion.target}</span>
                  </td>
                  <td>{typeof criterion.value === 'number' ? (Math.abs(criterion.value) <= 1 && !Number.isInteger(criterion.value) ? i18n.percent(criterion.value) : i18n.number(criterion.value)) : criterion.value === null ? t('na') : String(criterion.value)}</td>
                  <td>
                    <Badge ok={criterion.ok}>{criterion.ok ? t('ok') : t('notOk')}</Badge>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Card>
        <Card title={t('signals')}>
          {report.signals.length === 0 ? (
            <p>{t('noSignals')}</p>
          ) : (
            <ul className="signals">
              {report.signals.map((signal) => (
                <li key={signal.id} className={signal.severity}>
                  <strong>{i18n.signal(signal.id, signal.message)}</strong>
                  <ul>
                    {signal.directions.map((direction) => (
                      <li key={direction}>{i18n.direction(direction)}</li>
                    ))}
                  </ul>
                  {signal.fans.length > 0 && (
                    <p className="fans-line">
                      {t('fansToActOn')}:{' '}
                      {signal.fans.slice(0, 5).map((fan) => (
                        <Link key={fan} to={`/fans/${encodeURIComponent(fan)}`}>
                          {fan}
                        </Link>
                      ))}
                      {SIGNAL_LAYER[signal.id] && (
                        <Link to={`/fans?layer=${SIGNAL_LAYER[signal.id]}${signal.id === 'churn_core_high' ? '&tag=churnRisk%3Dhigh' : ''}`}>{t('seeAll')} →</Link>
                      )}
                    </p>
                  )}
                </li>
              ))}
            </ul>
          )}
        </Card>
      </div>
      <Card title={t('growth')}>
        <Chart option={growth} label={t('growth')} height={280} />
      </Card>
    </>
  );
}

export function OverviewPage({ month }: { month?: string }) {
  const i18n = useI18n();
  const { t } = i18n;
  const [state, reload] = useLoad(() => api.overview(month), [month]);
  return (
    <Async state={state} retry={reload}>
      {({ report, trend }) => (
        <div className="page" data-page="overview">
          <div className="page-head">
            <h1>
              {t('navOverview')} · {report.month}
            </h1>
            <span className="muted">
              {t('asOf', { date: i18n.dateTime(report.asOf) })}
              {report.partial ? ` · ${t('partial')}` : ''}
            </span>
            <MonthPicker month={report.month} onChange={(next) => navigate(`/?month=${next}`)} />
          </div>
          <Overview report={report} trend={trend} />
        </div>
      )}
    </Async>
  );
}
