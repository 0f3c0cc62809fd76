/** Movement: a Sankey of layer transitions over a month, and per-layer promotion and churn against targets. */
import { useMemo } from 'react';
import { api, type Movement } from '../api.js';
import { Chart, LAYER_COLORS, type ChartOption } from '../chart.js';
import { useI18n, type I18n } from '../i18n/index.js';
import { navigate } from '../router.js';
import { Async, Badge, Card, useLoad } from '../ui.js';
import { MonthPicker } from './overview.js';

function sankeyOption(movement: Movement, i18n: I18n): ChartOption {
  // Start and end of the same layer are distinct nodes (a Sankey has no cycles).
  const start = (layer: string) => `${i18n.layer(layer)} ·1`;
  const end = (layer: string) => `${i18n.layer(layer)} ·2`;
  const names = new Map<string, string>();
  for (const flow of movement.flows) {
    names.set(start(flow.from), flow.from);
    names.set(end(flow.to), flow.to);
  }
  return {
    tooltip: { trigger: 'item' },
    series: [
      {
        type: 'sankey',
        left: 10,
        right: 110,
        nodeGap: 12,
        emphasis: { focus: 'adjacency' },
        data: [...names].map(([name, layer]) => ({ name, itemStyle: { color: LAYER_COLORS[layer] ?? '#64748b' } })),
        links: movement.flows.map((flow) => ({ source: start(flow.from), target: end(flow.to), value: flow.count })),
        lineStyle: { color: 'gradient', opacity: 0.35 },
        label: { formatter: (p: { name: string; value: number }) => `${p.name.replace(/ ·[12]$/, '')} ${i18n.number(p.value)}` },
      },
    ],
  };
}

export function MovementPage({ month }: { month?: string }) {
  const i18n = useI18n();
  const { t } = i18n;
  const [state, reload] = useLoad(() => api.movement(month), [month]);
  const shown = state.status === 'ok' ? state.data.month : month ?? '';
  return (
    <div className="page" data-page="movement">
      <div className="page-head">
        <h1>{t('movementTitle', { month: shown })}</h1>
        <MonthPicker month={shown} onChange={(next) => navigate(`/movement?month=${next}`)} />
      </div>
      <Async state={state} retry={reload}>
        {(movement) => <MovementView movement={movement} />}
      </Async>
    </div>
  );
}

function MovementView({ movement }: { movement: Movement }) {
  const i18n = useI18n();
  const { t } = i18n;
  const option = useMemo(() => sankeyOption(movement, i18n), [movement, i18n]);
  return (
    <>
      <Card title={t('movementHint')}>
        <Chart option={option} label={t('movementHint')} height={380} />
      </Card>
      <Card>
        <table>
          <thead>
            <tr>
              <th>{t('layer')}</th>
              <th className="num">{t('atStart')}</th>
              <th className="num">{t('promoted')}</th>
              <th className="num">{t('demoted')}</th>
              <th className="num">{t('unfollowedCol')}</th>
              <th>{t('promotionRate')}</th>
              <th>{t('churnRate')}</th>
            </tr>
          </thead>
          <tbody>
            {movement.layers.map((row) => (
              <tr key={row.layer}>
                <td>
                  <span className={`layer-dot ${row.layer}`} /> {i18n.layer(row.layer)}
                </td>
                <td className="num">{i18n.number(row.start)}</td>
                <td className="num">{i18n.number(row.promoted)}</td>
                <td className="num">{i18n.number(row.demoted)}</td>
                <td className="num">{i18n.number(row.unfollowed)}</td>
                <td>
                  {row.promotionRate === null ? '—' : i18n.percent(row.promotionRate)}{' '}
                  {row.promotionTarget !== null && row.promotionRate !== null && <Badge ok={row.promotionRate > row.promotionTarget}>{t('target', { target: `> ${i18n.percent(row.promotionTarget, 0)}` })}</Badge>}
                </td>
                <td>
                  {row.churnRate === null ? '—' : i18n.percent(row.churnRate)}{' '}
                  {row.churnTarget !== null && row.churnRate !== null && <Badge ok={row.churnRate < row.churnTarget}>{t('target', { target: `< ${i18n.percent(row.churnTarget, 0)}` })}</Badge>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Card>
    </>
  );
}
