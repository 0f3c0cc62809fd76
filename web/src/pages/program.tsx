/** Program: the active YAML, an editor with validation at the line, what would change, history, activation. */
import { useEffect, useRef, useState } from 'react';
import { api, type ProgramChange, type ProgramIssue, type Session } from '../api.js';
import { useI18n } from '../i18n/index.js';
import { Async, Badge, Card, ConfirmDialog, ErrorState, useLoad } from '../ui.js';

type Check = { ok: boolean; version: string | null; issues: ProgramIssue[]; changes: ProgramChange[] };

function Editor({ value, onChange, badLines, focusLine }: { value: string; onChange: (text: string) => void; badLines: Set<number>; focusLine: number | null }) {
  const area = useRef<HTMLTextAreaElement>(null);
  const gutter = useRef<HTMLDivElement>(null);
  const lines = value.split('\n').length;
  useEffect(() => {
    const element = area.current;
    if (!element || focusLine === null) return;
    const offsets = value.split('\n').slice(0, focusLine - 1).reduce((sum, line) => sum + line.length + 1, 0);
    element.focus();
    element.setSelectionRange(offsets, offsets + (value.split('\n')[focusLine - 1]?.length ?? 0));
    element.scrollTop = Math.max(0, (focusLine - 5) * 20);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [focusLine]);
  return (
    <div className="editor">
      <div className="gutter" ref={gutter} aria-hidden="true">
        {Array.from({ length: lines }, (_, index) => (
          <div key={index} className={badLines.has(index + 1) ? 'bad-line' : ''} data-line={index + 1}>
            {index + 1}
          </div>
        ))}
      </div>
      <textarea
        ref={area}
        value={value}
        spellCheck={false}
        aria-label="program.yaml"
        onChange={(event) => onChange(event.target.value)}
        onScroll={(event) => {
          if (gutter.current) gutter.current.scrollTop = event.currentTarget.scrollTop;
        }}
      />
    </div>
  );
}

function format(value: unknown): string {
  return value === undefined ? '—' : typeof value === 'string' ? value : JSON.stringify(value);
}

export function ProgramPage({ session }: { session: Session }) {
  const i18n = useI18n();
  const { t } = i18n;
  const [state, reload] = useLoad(() => Promise.all([api.program(), api.programHistory()]), []);
  const [text, setText] = useState<string | null>(null);
  const [check, setCheck] = useState<Check | null>(null);
  const [focusLine, setFocusLine] = useState<number | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const canActivate = session.scopes.includes('admin');
  const validate = async (yaml: string) => {
    setError(null);
    setMessage(null);
    try {
      setCheck(await api.programDiff(yaml));
    } catch (failure) {
      setError(failure);
    }
  };
  const activate = async (yaml: string) => {
    setConfirming(false);
    try {
      const result = await api.activateProgram(yaml);
      setMessage(result.changed ? t('activated', { version: result.version }) : t('unchanged'));
      setCheck(null);
      reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <Async state={state} retry={reload}>
      {([program, history]) => {
        const yaml = text ?? program.yaml;
        const badLines = new Set((check?.issues ?? []).map((issue) => issue.line).filter((line): line is number => typeof line === 'number'));
        return (
          <div className="page" data-page="program">
            <div className="page-head">
              <h1>{t('programTitle')}</h1>
              <span className="muted">{t('activeVersion', { version: program.version })}</span>
            </div>
            <div className="grid program-grid">
              <Card
                title="program.yaml"
                actions={
                  <span>
                    <button type="button" onClick={() => validate(yaml)}>
                      {t('validate')}
                    </button>{' '}
                    {canActivate && (
                      <button type="button" className="primary" disabled={!check?.ok} onClick={() => setConfirming(true)}>
                        {t('activate')}
                      </button>
                    )}
                  </span>
                }
              >
                <Editor
                  value={yaml}
                  onChange={(next) => {
                    setText(next);
                    setCheck(null);
                  }}
                  badLines={badLines}
                  focusLine={focusLine}
                />
              </Card>
              <div className="stack">
                <Card title={t('check')}>
                  {error !== null && <ErrorState error={error} />}
                  {message && (
                    <p className="state ok" role="status">
                      {message}
                    </p>
                  )}
                  {check === null ? (
                    <p className="muted">—</p>
                  ) : check.ok ? (
                    <p className="state ok" role="status">
                      {t('valid', { version: check.version ?? '' })}
                    </p>
                  ) : (
                    <div role="alert" className="issues">
                      <p>{t('invalid', { count: check.issues.length })}</p>
                      <ul>
                        {check.issues.map((issue, index) => (
                          <li key={index}>
                            <button type="button" className="link" onClick={() => setFocusLine(issue.line ?? null)}>
                              {issue.line ? t('lineN', { line: issue.line }) : issue.path}
                            </button>{' '}
                            <code>{issue.path}</code>: {issue.message}
                          </li>
                        ))}
                      </ul>
                    </div>
                  )}
                  {check?.ok && (
                    <>
                      <h3>{t('changes')}</h3>
                      {check.changes.length === 0 ? (
                        <p>{t('noChanges')}</p>
                      ) : (
                        <table>
                          <tbody>
                            {check.changes.map((change) => (
                              <tr key={change.path}>
                                <td>
                                  <code>{change.path}</code>
                                </td>
                                <td className="bad">{format(change.from)}</td>
                                <td>→</td>
                                <td className="ok">{format(change.to)}</td>
                              </tr>
                            ))}
                          </tbody>
                        </table>
                      )}
                    </>
                  )}
                </Card>
                <Card title={t('history')}>
                  <table>
                    <tbody>
                      {history.items.map((item, index) => (
                        <tr key={item.version}>
                          <td>
                            <code>{item.version}</code> {index === 0 && <Badge ok>{t('active')}</Badge>}
                          </td>
                          <td>{i18n.dateTime(item.activatedAt)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </Card>
              </div>
            </div>
            <ConfirmDialog open={confirming} title={t('confirmTitle')} onCancel={() => setConfirming(false)} onConfirm={() => activate(yaml)}>
              {t('confirmActivate', { version: check?.version ?? '', count: check?.changes.length ?? 0 })}
            </ConfirmDialog>
          </div>
        );
      }}
    </Async>
  );
}
