/** The monthly review in the seed's four parts, laid out to print (or save as PDF) from the browser. */
import { api, type MonthlyReport } from '../api.js';
import { useI18n } from '../i18n/index.js';
import { navigate } from '../router.js';
import { Async, Card, useLoad } from '../ui.js';
import { formatIndicator, MonthPicker, Overview } from './overview.js';

function Parts({ report }: { report: MonthlyReport }) {
  const i18n = useI18n();
  const { t } = i18n;
  const missed = report.indicators.filter((item) => item.ok === false);
  const met = report.indicators.filter((item) => item.ok === true);
  const directions = [...new Set(report.signals.flatMap((signal) => signal.directions))];
  return (
    <>
      <Card title={t('part2')} className="print-block">
        {met.length === 0 ? (
          <p>{t('noHighlights')}</p>
        ) : (
          <ul>
            {met.map((item) => (
              <li key={item.id}>
                {i18n.indicator(item.id, item.label)}: <strong>{formatIndicator(i18n, item.id, item.value, report.currency)}</strong> ({t('target', { target: item.target })})
              </li>
            ))}
          </ul>
        )}
      </Card>
      <Card title={t('part3')} className="print-block">
        {missed.length === 0 ? (
          <p>{t('noProblems')}</p>
        ) : (
          <ul>
            {missed.map((item) => (
              <li key={item.id}>
                {i18n.indicator(item.id, item.label)}: <strong>{formatIndicator(i18n, item.id, item.value, report.currency)}</strong> ({t('target', { target: item.target })})
              </li>
            ))}
            {report.signals.map((signal) => (
              <li key={signal.id} className={signal.severity}>
                {i18n.signal(signal.id, signal.message)}
              </li>
            ))}
          </ul>
        )}
      </Card>
      <Card title={t('part4')} className="print-block">
        {directions.length === 0 ? (
          <p>{t('noSignals')}</p>
        ) : (
          <ol>
            {directions.map((direction) => (
              <li key={direction}>{i18n.direction(direction)}</li>
            ))}
          </ol>
        )}
      </Card>
    </>
  );
}

export function ReviewPage({ month }: { month?: string }) {
  const i18n = useI18n();
  const { t } = i18n;
  const [state, reload] = useLoad(() => api.overview(month), [month]);
  return (
    <Async state={state} retry={reload}>
      {({ report, trend }) => (
        <div className="page review" data-page="review">
          <div className="page-head">
            <h1>{t('reviewTitle', { month: report.month })}</h1>
            <span className="muted">{t('asOf', { date: i18n.dateTime(report.asOf) })}</span>
            <span className="no-print">
              <MonthPicker month={report.month} onChange={(next) => navigate(`/review?month=${next}`)} />{' '}
              <button type="button" className="primary" onClick={() => window.print()}>
                {t('print')}
              </button>
            </span>
          </div>
          <h2 className="part-title">{t('part1')}</h2>
          <Overview report={report} trend={trend} />
          <Parts report={report} />
        </div>
      )}
    </Async>
  );
}
