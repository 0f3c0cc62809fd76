/**
 * The sign-in form posts natively to /auth/login (works without script); the server answers with
 * the session cookie and a redirect to `next`, or back here with an error code.
 */
import { useEffect } from 'react';
import { api } from '../api.js';
import { LanguageSwitch } from '../app.js';
import { useI18n } from '../i18n/index.js';
import type { MessageKey } from '../i18n/en.js';

const ERRORS: Record<string, MessageKey> = { credentials: 'errorCredentials', missing: 'errorMissing', locked: 'errorLocked' };

export function LoginPage({ query }: { query: URLSearchParams }) {
  const { t } = useI18n();
  const next = query.get('next') ?? '/';
  const error = ERRORS[query.get('error') ?? ''];
  // Already signed in (a cookie the link could not carry): go on.
  useEffect(() => {
    api.session().then(
      () => window.location.assign(next.startsWith('/') && !next.startsWith('//') ? next : '/'),
      () => {},
    );
  }, [next]);
  return (
    <div className="login">
      <form method="post" action="/auth/login" className="card">
        <h1>▲ {t('signInTitle')}</h1>
        {error && (
          <p className="state error" role="alert">
            {t(error)}
          </p>
        )}
        <input type="hidden" name="next" value={next} />
        <label>
          {t('email')}
          <input type="email" name="email" autoComplete="username" required autoFocus />
        </label>
        <label>
          {t('password')}
          <input type="password" name="password" autoComplete="current-password" required />
        </label>
        <button type="submit" className="primary">
          {t('signIn')}
        </button>
        <LanguageSwitch />
      </form>
    </div>
  );
}
