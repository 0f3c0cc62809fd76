/** The shell: sign-in gate, navigation, language switch, and the page for the current path. */
import { lazy, Suspense, useEffect, useState, type ReactNode } from 'react';
import { api, type Session } from './api.js';
import { useI18n, type Lang } from './i18n/index.js';
import type { MessageKey } from './i18n/en.js';
import { Link, match, useLocation } from './router.js';
import { ErrorState, Loading } from './ui.js';
import { LoginPage } from './pages/login.js';
import { OverviewPage } from './pages/overview.js';

// The overview is in the first bundle; the other pages load when opened.
const FansPage = lazy(() => import('./pages/fans.js').then((module) => ({ default: module.FansPage })));
const FanPage = lazy(() => import('./pages/fan.js').then((module) => ({ default: module.FanPage })));
const MovementPage = lazy(() => import('./pages/movement.js').then((module) => ({ default: module.MovementPage })));
const ReferralPage = lazy(() => import('./pages/referral.js').then((module) => ({ default: module.ReferralPage })));
const ReviewPage = lazy(() => import('./pages/review.js').then((module) => ({ default: module.ReviewPage })));
const ProgramPage = lazy(() => import('./pages/program.js').then((module) => ({ default: module.ProgramPage })));

const NAV: [string, MessageKey][] = [
  ['/', 'navOverview'],
  ['/fans', 'navFans'],
  ['/movement', 'navMovement'],
  ['/referral', 'navReferral'],
  ['/review', 'navReview'],
  ['/program', 'navProgram'],
];

function page(path: string, query: URLSearchParams, session: Session): ReactNode {
  const fan = match('/fans/:id', path);
  if (fan) return <FanPage id={fan.id} session={session} />;
  switch (path) {
    case '/':
      return <OverviewPage month={query.get('month') ?? undefined} />;
    case '/fans':
      return <FansPage query={query} />;
    case '/movement':
      return <MovementPage month={query.get('month') ?? undefined} />;
    case '/referral':
      return <ReferralPage session={session} />;
    case '/review':
      return <ReviewPage month={query.get('month') ?? undefined} />;
    case '/program':
      return <ProgramPage session={session} />;
    default:
      return <ErrorState error={new Error(path)} />;
  }
}

export function LanguageSwitch() {
  const { lang, setLang, t } = useI18n();
  return (
    <label className="lang">
      <span className="sr-only">{t('language')}</span>
      <select value={lang} onChange={(event) => setLang(event.target.value as Lang)} aria-label={t('language')}>
        <option value="en">English</option>
        <option value="zh-CN">简体中文</option>
      </select>
    </label>
  );
}

export function App() {
  const location = useLocation();
  const { t } = useI18n();
  const [session, setSession] = useState<Session | null | 'loading'>('loading');
  const onLogin = location.pathname === '/login';
  useEffect(() => {
    if (onLogin) return;
    api.session().then(setSession, () => setSession(null));
  }, [onLogin]);
  if (onLogin) return <LoginPage query={location.searchParams} />;
  if (session === 'loading') return <Loading />;
  if (session === null) {
    window.location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    return <Loading />;
  }
  const signOut = async () => {
    await api.logout();
    window.location.assign('/login');
  };
  const section = location.pathname === '/' ? '/' : `/${location.pathname.split('/')[1]}`;
  return (
    <div className="shell">
      <header className="top">
        <Link to="/" className="brand">
          ▲ {t('appName')}
        </Link>
        <nav aria-label="main">
          {NAV.map(([to, key]) => (
            <Link key={to} to={to} className={section === to ? 'active' : ''}>
              {t(key)}
            </Link>
          ))}
        </nav>
        <div className="who">
          <LanguageSwitch />
          <span className="user" title={session.user.workspace}>
            {session.user.email} · {session.user.role}
          </span>
          <button type="button" onClick={signOut}>
            {t('signOut')}
          </button>
        </div>
      </header>
      <main>
        <Suspense fallback={<Loading />}>{page(location.pathname, location.searchParams, session)}</Suspense>
      </main>
    </div>
  );
}
