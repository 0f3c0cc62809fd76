/**
 * Language, strings and number/date formats. The choice is kept in localStorage; the first
 * visit follows the browser's language.
 */
import { createContext, useContext, useMemo, useState, type ReactNode } from 'react';
import { zhIndicators } from '../../../src/cli/messages.js';
import { en, type MessageKey } from './en.js';
import { zhCN } from './zh-CN.js';
import { zhDirections, zhSignals } from './zh-CN-report.js';

export type Lang = 'en' | 'zh-CN';

export interface I18n {
  lang: Lang;
  setLang(lang: Lang): void;
  t(key: MessageKey, vars?: Record<string, string | number>): string;
  number(value: number, digits?: number): string;
  percent(value: number | null, digits?: number): string;
  money(value: number, currency: string): string;
  date(iso: string | number): string;
  dateTime(iso: string | number): string;
  indicator(id: string, fallback: string): string;
  signal(id: string, fallback: string): string;
  direction(text: string): string;
  layer(name: string): string;
}

const STORAGE_KEY = 'fanflow.lang';

function initialLang(): Lang {
  const stored = typeof localStorage === 'undefined' ? null : localStorage.getItem(STORAGE_KEY);
  if (stored === 'en' || stored === 'zh-CN') return stored;
  return typeof navigator !== 'undefined' && navigator.language.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

function build(lang: Lang, setLang: (lang: Lang) => void): I18n {
  const dict = lang === 'zh-CN' ? zhCN : en;
  const zh = lang === 'zh-CN';
  const numberFormats = new Map<number, Intl.NumberFormat>();
  const numberFormat = (digits: number) => {
    let format = numberFormats.get(digits);
    if (!format) numberFormats.set(digits, (format = new Intl.NumberFormat(lang, { maximumFractionDigits: digits })));
    return format;
  };
  const dateFormat = new Intl.DateTimeFormat(lang, { year: 'numeric', month: 'short', day: 'numeric' });
  const dateTimeFormat = new Intl.DateTimeFormat(lang, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  return {
    lang,
    setLang,
    t: (key, vars) => {
      let text = dict[key] ?? en[key];
      if (vars) for (const [name, value] of Object.entries(vars)) text = text.replaceAll(`{${name}}`, String(value));
      return text;
    },
    number: (value, digits = 0) => numberFormat(digits).format(value),
    percent: (value, digits = 1) => (value === null ? dict.na : `${numberFormat(digits).format(value * 100)} %`),
    money: (value, currency) => new Intl.NumberFormat(lang, { style: 'currency', currency, maximumFractionDigits: 2 }).format(value),
    date: (iso) => dateFormat.format(new Date(iso)),
    dateTime: (iso) => dateTimeFormat.format(new Date(iso)),
    indicator: (id, fallback) => (zh ? zhIndicators[id] ?? fallback : fallback),
    signal: (id, fallback) => (zh ? zhSignals[id] ?? fallback : fallback),
    direction: (text) => (zh ? zhDirections[text] ?? text : text),
    layer: (name) => dict[`layer_${name}` as MessageKey] ?? name,
  };
}

const Context = createContext<I18n>(build('en', () => {}));

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(initialLang);
  const value = useMemo(
    () =>
      build(lang, (next) => {
        localStorage.setItem(STORAGE_KEY, next);
        document.documentElement.lang = next;
        setLangState(next);
      }),
    [lang],
  );
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export function useI18n(): I18n {
  return useContext(Context);
}
