/** Fans: filters in the URL (shareable), server-side order and cursor paging, CSV export of the filter. */
import { useEffect, useState, type FormEvent } from 'react';
import { api, type FanQuery, type FanView } from '../api.js';
import { useI18n } from '../i18n/index.js';
import { Link, navigate } from '../router.js';
import { Card, Empty, ErrorState, Loading } from '../ui.js';

const PAGE_SIZE = 50;
type Sort = NonNullable<FanQuery['sort']> | '';

function queryOf(params: URLSearchParams): FanQuery {
  const level = params.get('level');
  const sort = (params.get('sort') ?? '') as Sort;
  return {
    layer: params.get('layer') || undefined,
    level: level ? Number(level) : undefined,
    tag: params.getAll('tag').filter((tag) => tag.includes('=')),
    // A level filter reads in level order (the server starts at that level), not through every fan.
    sort: sort === '' ? (level ? 'level' : undefined) : sort,
    limit: PAGE_SIZE,
  };
}

/** Pages read at most this many stored fans; a rare filter may need several reads to fill one. */
const MAX_READS_PER_PAGE = 5;

async function fillPage(filters: FanQuery, cursor: string | undefined): Promise<{ items: FanView[]; nextCursor: string | null }> {
  let answer = await api.fans({ ...filters, cursor });
  for (let reads = 1; answer.items.length === 0 && answer.nextCursor !== null && reads < MAX_READS_PER_PAGE; reads++) answer = await api.fans({ ...filters, cursor: answer.nextCursor });
  return answer;
}

/** A column header that orders the table by its column (descending first, then ascending); `null`: fan order. */
function SortHeader({ label, query, column, className }: { label: string; query: URLSearchParams; column: 'level' | 'loyalty' | null; className?: string }) {
  const current = query.get('sort') ?? '';
  const active = column === null ? current === '' : current.replace('-', '') === column;
  const next = column === null ? '' : current === `-${column}` ? column : `-${column}`;
  const params = new URLSearchParams(query);
  if (next === '') params.delete('sort');
  else params.set('sort', next);
  const ariaSort = !active ? 'none' : column === null ? 'ascending' : current.startsWith('-') ? 'descending' : 'ascending';
  return (
    <th scope="col" className={className} aria-sort={ariaSort}>
      <button type="button" className="sort" onClick={() => navigate(`/fans${params.size > 0 ? `?${params}` : ''}`)}>
        {label} {active ? (ariaSort === 'descending' ? '↓' : '↑') : '↕'}
      </button>
    </th>
  );
}

export function FansPage({ query }: { query: URLSearchParams }) {
  const i18n = useI18n();
  const { t } = i18n;
  const filters = queryOf(query);
  const key = query.toString();
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<{ items: FanView[]; next: string | null; ms: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [round, setRound] = useState(0);
  const index = cursors.length - 1;
  useEffect(() => setCursors([undefined]), [key]);
  useEffect(() => {
    let live = true;
    const started = performance.now();
    setPage(null);
    setError(null);
    fillPage(filters, cursors[index]).then(
      (answer) => live && setPage({ items: answer.items, next: answer.nextCursor, ms: Math.round(performance.now() - started) }),
      (failure: unknown) => live && setError(failure),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, cursors, round]);

  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const id = String(form.get('id') ?? '').trim();
    if (id !== '') return navigate(`/fans/${encodeURIComponent(id)}`);
    const params = new URLSearchParams();
    for (const name of ['layer', 'level', 'sort']) {
      const value = String(form.get(name) ?? '');
      if (value !== '') params.set(name, value);
    }
    for (const name of ['churnRisk', 'channel']) {
      const value = String(form.get(name) ?? '').trim();
      if (value !== '') params.append('tag', `${name}=${value}`);
    }
    const tag = String(form.get('tag') ?? '').trim();
    if (tag !== '') params.append('tag', tag);
    navigate(`/fans${params.size > 0 ? `?${params}` : ''}`);
  };
  const tagValue = (name: string) => filters.tag?.find((tag) => tag.startsWith(`${name}=`))?.slice(name.length + 1) ?? '';
  const otherTag = filters.tag?.find((tag) => !tag.startsWith('churnRisk=') && !tag.startsWith('channel=')) ?? '';

  return (
    <div className="page" data-page="fans">
      <div className="page-head">
        <h1>{t('navFans')}</h1>
        <a className="button" href={api.fansExportUrl(filters)} download>
          {t('exportCsv')}
        </a>
      </div>
      <Card>
        <form className="filters" onSubmit={submit} key={key}>
          <label>
            {t('searchId')}
            <input name="id" placeholder={t('searchIdPlaceholder')} />
          </label>
          <label>
            {t('layer')}
            <select name="layer" defaultValue={filters.layer ?? ''}>
              <option value="">{t('any')}</option>
              {['core', 'backbone', 'general', 'observation', 'unfollowed'].map((layer) => (
                <option key={layer} value={layer}>
                  {i18n.layer(layer)}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t('level')}
            <select name="level" defaultValue={filters.level ?? ''}>
              <option value="">{t('any')}</option>
              {[1, 2, 3, 4, 5].map((level) => (
                <option key={level} value={level}>
                  Lv{level}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t('churnRisk')}
            <select name="churnRisk" defaultValue={tagValue('churnRisk')}>
              <option value="">{t('any')}</option>
              {(['low', 'medium', 'high'] as const).map((risk) => (
                <option key={risk} value={risk}>
                  {t(`risk_${risk}`)}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t('channel')}
            <input name="channel" defaultValue={tagValue('channel')} placeholder="wechat" />
          </label>
          <label>
            {t('tagFilter')}
            <input name="tag" defaultValue={otherTag} placeholder="koc=true" />
          </label>
          <label>
            {t('sort')}
            <select name="sort" defaultValue={query.get('sort') ?? ''}>
              <option value="">{t('sortFanNo')}</option>
              <option value="-level">{t('sortLevelDesc')}</option>
              <option value="level">{t('sortLevelAsc')}</option>
              <option value="-loyalty">{t('sortLoyaltyDesc')}</option>
              <option value="loyalty">{t('sortLoyaltyAsc')}</option>
            </select>
          </label>
          <button type="submit" className="primary">
            {t('apply')}
          </button>
        </form>
      </Card>
      <Card>
        {error !== null ? (
          <ErrorState error={error} retry={() => setRound((value) => value + 1)} />
        ) : page === null ? (
          <Loading />
        ) : page.items.length === 0 && page.next === null ? (
          <Empty>{t('noFans')}</Empty>
        ) : (
          <>
            <table className="fans-table" data-page-ms={page.ms}>
              <thead>
                <tr>
                  <SortHeader label={t('fan')} query={query} column={null} />
                  <SortHeader label={t('level')} query={query} column="level" />
                  <th scope="col">{t('layer')}</th>
                  <th scope="col" className="num">
                    {t('points')}
                  </th>
                  <SortHeader label={t('loyalty')} query={query} column="loyalty" className="num" />
                  <th scope="col">{t('churnRisk')}</th>
                  <th scope="col" className="num">
                    {t('referrals')}
                  </th>
                  <th scope="col">{t('lastActivity')}</th>
                </tr>
              </thead>
              <tbody>
                {page.items.map((fan) => (
                  <tr key={fan.id}>
                    <td>
                      <Link to={`/fans/${encodeURIComponent(fan.id)}`}>{fan.id}</Link>
                    </td>
                    <td>
                      Lv{fan.level.level} {fan.level.name}
                    </td>
                    <td>
                      <span className={`layer-dot ${fan.layer.layer}`} /> {i18n.layer(fan.layer.layer)}
                    </td>
                    <td className="num">{i18n.number(fan.points.balance)}</td>
                    <td className="num">{fan.tags.loyaltyScore === null ? '—' : i18n.number(Number(fan.tags.loyaltyScore))}</td>
                    <td>
                      <span className={`risk ${fan.churnRisk}`}>{t(`risk_${fan.churnRisk}`)}</span>
                    </td>
                    <td className="num">{fan.qualifiedReferrals}</td>
                    <td>{fan.lastActivity ? i18n.date(fan.lastActivity) : '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {page.items.length === 0 && <Empty>{t('noFans')}</Empty>}
          </>
        )}
        <div className="pager">
          <button type="button" disabled={index === 0} onClick={() => setCursors((list) => list.slice(0, -1))}>
            ← {t('previousPage')}
          </button>
          <span className="muted">
            {t('page', { page: index + 1 })}
            {page && ` · ${t('pageTime', { ms: page.ms })}`}
          </span>
          <button type="button" disabled={!page?.next} onClick={() => page?.next && setCursors((list) => [...list, page.next as string])}>
            {t('nextPage')} →
          </button>
        </div>
      </Card>
    </div>
  );
}
