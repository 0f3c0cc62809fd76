/** Fan 360: level and layer with their reasons, points and ledger lines, tags, timeline, referrals, actions. */
import { useState } from 'react';
import { api, ApiError, type ActionRequest, type FanView, type Session, type TimelineItem } from '../api.js';
import { useI18n } from '../i18n/index.js';
import type { MessageKey } from '../i18n/en.js';
import { Link } from '../router.js';
import { Async, Card, ConfirmDialog, Empty, ErrorState, useLoad } from '../ui.js';

function Actions({ fan, session, onDone }: { fan: FanView; session: Session; onDone: (fan: FanView) => void }) {
  const { t } = useI18n();
  const [pending, setPending] = useState<{ label: MessageKey; request: ActionRequest } | null>(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [lockLevel, setLockLevel] = useState(String(fan.level.level));
  const [badge, setBadge] = useState('');
  const [points, setPoints] = useState('');
  const [note, setNote] = useState('');
  if (!session.scopes.includes('admin')) return <p className="muted">{t('actionsReadOnly')}</p>;
  const ask = (label: MessageKey, request: ActionRequest) => {
    setMessage(null);
    setError(null);
    setPending({ label, request: note.trim() === '' ? request : { ...request, note: note.trim() } });
  };
  const run = async () => {
    if (!pending) return;
    setBusy(true);
    try {
      const answer = await api.act(fan.id, { ...pending.request, requestId: crypto.randomUUID() });
      setMessage(t('actionDone', { level: answer.fan.level.level }));
      onDone(answer.fan);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
      setPending(null);
    }
  };
  return (
    <div className="actions">
      <label className="wide">
        {t('note')}
        <input value={note} onChange={(event) => setNote(event.target.value)} maxLength={500} />
      </label>
      <button type="button" onClick={() => ask('recognize', { action: 'recognize' })} disabled={fan.level.level !== 4}>
        {t('recognize')}
      </button>
      <div className="row">
        <select value={lockLevel} onChange={(event) => setLockLevel(event.target.value)} aria-label={t('level')}>
          {[1, 2, 3, 4, 5].map((level) => (
            <option key={level} value={level}>
              Lv{level}
            </option>
          ))}
        </select>
        <button type="button" onClick={() => ask('lockLevel', { action: 'lock_level', level: Number(lockLevel) })}>
          {t('lockLevel')}
        </button>
        {fan.level.locked && (
          <button type="button" onClick={() => ask('unlockLevel', { action: 'unlock_level' })}>
            {t('unlockLevel')}
          </button>
        )}
      </div>
      <div className="row">
        <input value={badge} onChange={(event) => setBadge(event.target.value)} placeholder="koc" aria-label={t('badge')} />
        <button type="button" disabled={badge.trim() === ''} onClick={() => ask('grantBadge', { action: 'grant_badge', badge: badge.trim() })}>
          {t('grantBadge')}
        </button>
      </div>
      <div className="row">
        <input type="number" step="1" value={points} onChange={(event) => setPoints(event.target.value)} placeholder="+100 / -50" aria-label={t('points')} />
        <button type="button" disabled={!Number.isInteger(Number(points)) || Number(points) === 0} onClick={() => ask('adjustPoints', { action: 'adjust_points', points: Number(points) })}>
          {t('adjustPoints')}
        </button>
      </div>
      {message && (
        <p className="state ok" role="status">
          {message}
        </p>
      )}
      {error !== null && <ErrorState error={error instanceof ApiError && error.issues.length > 0 ? new Error(error.issues.map((issue) => `${issue.field}: ${issue.reason}`).join('; ')) : error} />}
      <ConfirmDialog open={pending !== null} title={t('confirmTitle')} onCancel={() => setPending(null)} onConfirm={run} busy={busy}>
        {pending && t('confirmAction', { action: t(pending.label), fan: fan.id })}
      </ConfirmDialog>
    </div>
  );
}

function Timeline({ id }: { id: string }) {
  const i18n = useI18n();
  const [pages, setPages] = useState<{ items: TimelineItem[]; nextBefore: number | null }[]>([]);
  const [state, reload] = useLoad(async () => {
    const first = await api.timeline(id);
    setPages([first]);
    return first;
  }, [id]);
  const more = async () => setPages([...pages, await api.timeline(id, pages[pages.length - 1].nextBefore ?? undefined)]);
  const last = pages[pages.length - 1];
  return (
    <Async state={state} retry={reload}>
      {() => (
        <>
          <ol className="timeline">
            {pages
              .flatMap((page) => page.items)
              .map((item, index) => (
                <li key={`${item.kind}-${item.eventId}-${item.type}-${index}`} className={item.kind}>
                  <time dateTime={item.at}>{i18n.dateTime(item.at)}</time>
                  <span className="tl-kind">{item.kind === 'change' ? i18n.t('derivedChange') : i18n.t('event')}</span>
                  <strong>{item.type}</strong>
                  <span className="muted">
                    {Object.entries(item.detail)
                      .slice(0, 4)
                      .map(([key, value]) => `${key}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
                      .join(' · ')}
                  </span>
                </li>
              ))}
          </ol>
          {last?.nextBefore != null && (
            <button type="button" onClick={more}>
              {i18n.t('loadMore')}
            </button>
          )}
        </>
      )}
    </Async>
  );
}

export function FanPage({ id, session }: { id: string; session: Session }) {
  const i18n = useI18n();
  const { t } = i18n;
  const [state, reload] = useLoad(() => Promise.all([api.fan(id), api.referral(id).catch(() => null)]), [id]);
  const [updated, setUpdated] = useState<FanView | null>(null);
  return (
    <Async state={state} retry={reload}>
      {([loaded, referral]) => {
        const fan = updated?.id === id ? updated : loaded;
        return (
          <div className="page" data-page="fan">
            <div className="page-head">
              <h1>
                {t('profile')} · {fan.id}
              </h1>
              <span className="muted">{t('asOf', { date: i18n.dateTime(fan.asOf) })}</span>
            </div>
            <div className="grid three">
              <Card title={t('levelRule')}>
                <div className="kpi" data-testid="fan-level">
                  Lv{fan.level.level} {fan.level.name} {fan.level.locked && <span className="badge na">{t('locked')}</span>}
                </div>
                {fan.level.eligibleForNext && <p className="badge ok">{t('eligibleForNext')}</p>}
                <ul>
                  {fan.level.reasons.map((reason) => (
                    <li key={reason}>{reason}</li>
                  ))}
                </ul>
                {fan.level.next ? (
                  <>
                    <h3>{t('nextLevel', { level: fan.level.next.level, name: fan.level.next.name })}</h3>
                    <ul className="checks">
                      {fan.level.next.missing.map((item) => (
                        <li key={item} className="bad">
                          ✗ {item}
                        </li>
                      ))}
                      {fan.level.next.met.map((item) => (
                        <li key={item} className="muted">
                          · {item}
                        </li>
                      ))}
                    </ul>
                  </>
                ) : (
                  <p>{t('topLevel')}</p>
                )}
              </Card>
              <Card title={t('layerReasons')}>
                <div className="kpi">
                  <span className={`layer-dot ${fan.layer.layer}`} /> {i18n.layer(fan.layer.layer)}
                </div>
                <ul>
                  {fan.layer.reasons.map((reason) => (
                    <li key={reason}>{reason}</li>
                  ))}
                </ul>
                <p>
                  {t('churnRisk')}: <span className={`risk ${fan.churnRisk}`}>{t(`risk_${fan.churnRisk}`)}</span>
                </p>
              </Card>
              <Card title={t('actions')}>
                <Actions fan={fan} session={session} onDone={setUpdated} />
              </Card>
            </div>
            <div className="grid two">
              <Card title={t('ledger')} actions={<span className="kpi-small">{t('balance', { balance: i18n.number(fan.points.balance) })}</span>}>
                {fan.points.recent.length === 0 ? (
                  <Empty />
                ) : (
                <table>
                  <thead>
                    <tr>
                      <th>{t('lastActivity')}</th>
                      <th>{t('rule')}</th>
                      <th className="num">{t('change')}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {fan.points.recent.map((line, index) => (
                      <tr key={index}>
                        <td>{i18n.dateTime(line.at)}</td>
                        <td>{line.rule}</td>
                        <td className={`num ${line.points < 0 ? 'bad' : 'ok'}`}>{line.points > 0 ? `+${line.points}` : line.points}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                )}
              </Card>
              <Card title={t('tags')}>
                <dl className="tags">
                  {Object.entries(fan.tags).map(([key, value]) => (
                    <div key={key}>
                      <dt>{key}</dt>
                      <dd>{value === null ? '—' : String(value)}</dd>
                    </div>
                  ))}
                </dl>
                <h3>{t('badges')}</h3>
                <p>{fan.badges.length === 0 ? t('none') : fan.badges.join(', ')}</p>
                <h3>{t('referrer')}</h3>
                <p>{fan.referrer ? <Link to={`/fans/${encodeURIComponent(fan.referrer)}`}>{fan.referrer}</Link> : t('none')}</p>
                <h3>
                  {t('referees')} ({fan.qualifiedReferrals})
                </h3>
                <p className="fans-line">
                  {!referral || referral.referees.length === 0
                    ? t('none')
                    : referral.referees.map((referee) => (
                        <Link key={referee.fan} to={`/fans/${encodeURIComponent(referee.fan)}`}>
                          {referee.fan}
                          {referee.depth > 1 ? ` (${referee.depth})` : ''}
                          {referee.qualified ? ' ✓' : ''}
                        </Link>
                      ))}
                </p>
              </Card>
            </div>
            <Card title={t('timeline')}>
              <Timeline id={fan.id} key={fan.points.balance + fan.level.level} />
            </Card>
          </div>
        );
      }}
    </Async>
  );
}
