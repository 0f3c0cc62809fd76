/** Shared pieces: cards, the loading / error / empty states, and a data-loading hook. */
import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { ApiError } from './api.js';
import { useI18n } from './i18n/index.js';

export function Card({ title, children, actions, className }: { title?: ReactNode; children: ReactNode; actions?: ReactNode; className?: string }) {
  return (
    <section className={`card ${className ?? ''}`}>
      {(title || actions) && (
        <header className="card-head">
          {title && <h2>{title}</h2>}
          {actions}
        </header>
      )}
      {children}
    </section>
  );
}

export function Loading() {
  const { t } = useI18n();
  return (
    <div className="state loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {t('loading')}
    </div>
  );
}

export function ErrorState({ error, retry }: { error: unknown; retry?: () => void }) {
  const { t } = useI18n();
  const message =
    error instanceof ApiError && error.status === 0 ? t('errorNetwork') : error instanceof ApiError && error.status === 403 ? t('errorForbidden') : t('errorGeneric', { message: (error as Error).message });
  return (
    <div className="state error" role="alert">
      <p>{message}</p>
      {retry && (
        <button type="button" onClick={retry}>
          {t('retry')}
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children?: ReactNode }) {
  const { t } = useI18n();
  return <div className="state empty">{children ?? t('empty')}</div>;
}

export type Loaded<T> = { status: 'loading' } | { status: 'error'; error: unknown } | { status: 'ok'; data: T };

/** Loads on mount and whenever `deps` change; `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): [Loaded<T>, () => void] {
  const [state, setState] = useState<Loaded<T>>({ status: 'loading' });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    setState({ status: 'loading' });
    load().then(
      (data) => live && setState({ status: 'ok', data }),
      (error: unknown) => live && setState({ status: 'error', error }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, round]);
  return [state, useCallback(() => setRound((value) => value + 1), [])];
}

/** Renders the loaded data, or the loading / error state. */
export function Async<T>({ state, retry, children }: { state: Loaded<T>; retry: () => void; children: (data: T) => ReactNode }) {
  if (state.status === 'loading') return <Loading />;
  if (state.status === 'error') return <ErrorState error={state.error} retry={retry} />;
  return <>{children(state.data)}</>;
}

export function Badge({ ok, children }: { ok: boolean | null; children: ReactNode }) {
  return <span className={`badge ${ok === null ? 'na' : ok ? 'ok' : 'bad'}`}>{children}</span>;
}

/** A modal confirmation on the native <dialog> (focus trapped, Escape cancels). */
export function ConfirmDialog({ open, title, children, onConfirm, onCancel, busy }: { open: boolean; title: string; children: ReactNode; onConfirm: () => void; onCancel: () => void; busy?: boolean }) {
  const { t } = useI18n();
  const [dialog, setDialog] = useState<HTMLDialogElement | null>(null);
  useEffect(() => {
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open, dialog]);
  return (
    <dialog ref={setDialog} onCancel={onCancel} aria-labelledby="confirm-title">
      <h2 id="confirm-title">{title}</h2>
      <div>{children}</div>
      <div className="dialog-actions">
        <button type="button" onClick={onCancel}>
          {t('cancel')}
        </button>
        <button type="button" className="primary" onClick={onConfirm} disabled={busy} autoFocus>
          {t('confirm')}
        </button>
      </div>
    </dialog>
  );
}
