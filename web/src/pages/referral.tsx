/** Referral: leaderboard, K-factor over time, the largest trees as an interactive tree, held rewards to review. */
import { useMemo, useState } from 'react';
import { api, type FissionAnalytics, type ReviewItem, type Session, type TreeNode } from '../api.js';
import { Chart, type ChartOption } from '../chart.js';
import { useI18n, type I18n } from '../i18n/index.js';
import { Link } from '../router.js';
import { Async, Card, ConfirmDialog, Empty, ErrorState, useLoad } from '../ui.js';

function kOption(analytics: FissionAnalytics, i18n: I18n): ChartOption {
  return {
    grid: { left: 50, right: 60, top: 40, bottom: 30 },
    legend: { top: 0 },
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'category', data: analytics.months.map((month) => month.month) },
    yAxis: [{ type: 'value' }, { type: 'value', axisLabel: { formatter: (v: number) => i18n.number(v) } }],
    series: [
      { name: i18n.t('kFactorSeries'), type: 'line', data: analytics.months.map((month) => month.kFactor), itemStyle: { color: '#4f46e5' } },
      { name: i18n.t('referredNewFollowers'), type: 'bar', yAxisIndex: 1, data: analytics.months.map((month) => month.referredNewFollowers), itemStyle: { color: '#a5b4fc' } },
    ],
  };
}

interface EChartsTreeNode {
  name: string;
  children: EChartsTreeNode[];
}

function toECharts(node: TreeNode): EChartsTreeNode {
  return { name: node.fan, children: node.children.map(toECharts) };
}

/** The widest generation of a tree: the chart's height grows with it. */
function widest(node: TreeNode): number {
  let level = [node];
  let most = 1;
  while (level.length > 0) {
    most = Math.max(most, level.length);
    level = level.flatMap((item) => item.children);
  }
  return most;
}

function TreeView({ root }: { root: string }) {
  const { t } = useI18n();
  const [state, reload] = useLoad(() => api.tree(root), [root]);
  return (
    <Async state={state} retry={reload}>
      {(tree) => {
        const option: ChartOption = {
          tooltip: { trigger: 'item' },
          series: [{ type: 'tree', data: [toECharts(tree.tree)], top: 10, left: 70, bottom: 10, right: 90, symbolSize: 9, expandAndCollapse: true, initialTreeDepth: tree.people <= 150 ? -1 : 3, label: { position: 'left', fontSize: 11 }, leaves: { label: { position: 'right' } } }],
        };
        return (
          <>
            <p className="muted">
              {tree.root}: {t('people', { people: tree.people, levels: tree.levels })}
            </p>
            <Chart option={option} label={t('largestTrees')} height={Math.min(720, 80 + widest(tree.tree) * 22)} />
          </>
        );
      }}
    </Async>
  );
}

function Reviews({ session }: { session: Session }) {
  const i18n = useI18n();
  const { t } = i18n;
  const [state, reload] = useLoad(() => api.reviews(), []);
  const [pending, setPending] = useState<{ item: ReviewItem; decision: 'release' | 'void' } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const canAct = session.scopes.includes('admin');
  const decide = async () => {
    if (!pending) return;
    try {
      await api.resolveReview(pending.item.referee, pending.decision);
      reload();
    } catch (failure) {
      setError(failure);
    } finally {
      setPending(null);
    }
  };
  return (
    <Async state={state} retry={reload}>
      {(items) =>
        items.length === 0 ? (
          <Empty>{t('noReviews')}</Empty>
        ) : (
          <>
            {error !== null && <ErrorState error={error} />}
            <table>
              <thead>
                <tr>
                  <th>{t('referees')}</th>
                  <th>{t('referrer')}</th>
                  <th>{t('reasons')}</th>
                  <th className="num">{t('pending')}</th>
                  <th className="num">{t('held')}</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {items.map((item) => (
                  <tr key={item.referee}>
                    <td>
                      <Link to={`/fans/${encodeURIComponent(item.referee)}`}>{item.referee}</Link>
                    </td>
                    <td>
                      <Link to={`/fans/${encodeURIComponent(item.referrer)}`}>{item.referrer}</Link>
                    </td>
                    <td>{item.reasons.join(', ')}</td>
                    <td className="num">{i18n.number(item.pending, 2)}</td>
                    <td className="num">{i18n.number(item.held, 2)}</td>
                    <td>
                      {canAct && (
                        <>
                          <button type="button" onClick={() => setPending({ item, decision: 'release' })}>
                            {t('release')}
                          </button>{' '}
                          <button type="button" onClick={() => setPending({ item, decision: 'void' })}>
                            {t('void')}
                          </button>
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <ConfirmDialog open={pending !== null} title={t('confirmTitle')} onCancel={() => setPending(null)} onConfirm={decide}>
              {pending && t('confirmAction', { action: t(pending.decision), fan: pending.item.referee })}
            </ConfirmDialog>
          </>
        )
      }
    </Async>
  );
}

export function ReferralPage({ session }: { session: Session }) {
  const i18n = useI18n();
  const { t } = i18n;
  const [board, reloadBoard] = useLoad(() => api.leaderboard(), []);
  const [analytics, reloadAnalytics] = useLoad(() => api.analytics(), []);
  const [compliance, reloadCompliance] = useLoad(() => api.compliance(), []);
  const [root, setRoot] = useState<string | null>(null);
  const kChart = useMemo(() => (analytics.status === 'ok' ? kOption(analytics.data, i18n) : null), [analytics, i18n]);
  return (
    <div className="page" data-page="referral">
      <div className="page-head">
        <h1>{t('navReferral')}</h1>
      </div>
      <div className="grid two">
        <Card title={t('leaderboard')}>
          <Async state={board} retry={reloadBoard}>
            {(data) =>
              data.entries.length === 0 ? (
                <Empty />
              ) : (
                <table>
                  <thead>
                    <tr>
                      <th>{t('rank')}</th>
                      <th>{t('fan')}</th>
                      <th>{t('code')}</th>
                      <th className="num">{t('referrals')}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.entries.map((entry) => (
                      <tr key={entry.fan}>
                        <td>{entry.rank}</td>
                        <td>
                          <Link to={`/fans/${encodeURIComponent(entry.fan)}`}>{entry.fan}</Link> {entry.title && <span className="badge ok">{entry.title}</span>}
                        </td>
                        <td>
                          <code>{entry.code}</code>
                        </td>
                        <td className="num">{entry.referrals}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )
            }
          </Async>
        </Card>
        <Card title={t('kFactor')}>
          <Async state={analytics} retry={reloadAnalytics}>
            {() => kChart && <Chart option={kChart} label={t('kFactor')} height={300} />}
          </Async>
        </Card>
      </div>
      <Card title={t('largestTrees')}>
        <Async state={compliance} retry={reloadCompliance}>
          {(data) =>
            data.largestTrees.length === 0 ? (
              <Empty />
            ) : (
              <>
                <p className="muted">{t('treeHint')}</p>
                <div className="chips">
                  {data.largestTrees.map((tree) => (
                    <button type="button" key={tree.root} className={(root ?? data.largestTrees[0].root) === tree.root ? 'chip active' : 'chip'} onClick={() => setRoot(tree.root)}>
                      {tree.root} · {t('people', { people: tree.people, levels: tree.levels })}
                    </button>
                  ))}
                </div>
                <TreeView root={root ?? data.largestTrees[0].root} />
              </>
            )
          }
        </Async>
      </Card>
      <Card title={t('heldRewards')}>
        <Reviews session={session} />
      </Card>
    </div>
  );
}
