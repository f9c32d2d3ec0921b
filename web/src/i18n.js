// The interface in French, English or Chinese, and times in the organisation's time zone.
import { STRINGS } from "./strings.js";
import { setApiLanguage } from "./api.js";

export const LANGUAGES = [
  ["fr", "Français"],
  ["en", "English"],
  ["zh", "中文"],
];
const KEY = "gs-lang";
let lang = "en";
let timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function supported(value) {
  const short = (value || "").toLowerCase().slice(0, 2);
  return STRINGS[short] ? short : null;
}

// The language chosen on this browser, else the browser's own, else the organisation's, else English.
export function initialLanguage(orgLocale) {
  return (
    supported(localStorage.getItem(KEY)) ||
    (navigator.languages || [navigator.language]).map(supported).find(Boolean) ||
    supported(orgLocale) ||
    "en"
  );
}

export function setLanguage(value, remember = false) {
  lang = supported(value) || "en";
  if (remember) localStorage.setItem(KEY, lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : lang;
  setApiLanguage(lang);
}

export function language() {
  return lang;
}

export function setTimeZone(value) {
  try {
    new Intl.DateTimeFormat("en", { timeZone: value });
    timeZone = value;
  } catch {
    /* an unknown zone: keep the browser's */
  }
}

export function zone() {
  return timeZone;
}

export function t(key, values = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

function locale() {
  return { fr: "fr-FR", en: "en-GB", zh: "zh-CN" }[lang];
}

function parts(date) {
  const found = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(date);
  return Object.fromEntries(found.map((p) => [p.type, p.value]));
}

// The day (YYYY-MM-DD) it is now in the organisation's zone.
export function today(now = new Date()) {
  const p = parts(now);
  return `${p.year}-${p.month}-${p.day}`;
}

function offsetMs(date) {
  const p = parts(date);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return asUtc - Math.floor(date.getTime() / 1000) * 1000;
}

// Midnight of a day (YYYY-MM-DD) in the organisation's zone, as an instant; DST-safe.
export function startOfDay(day) {
  const [y, m, d] = day.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d);
  let instant = guess - offsetMs(new Date(guess));
  instant = guess - offsetMs(new Date(instant));
  return new Date(instant);
}

export function addDays(day, n) {
  const [y, m, d] = day.split("-").map(Number);
  const next = new Date(Date.UTC(y, m - 1, d + n));
  return next.toISOString().slice(0, 10);
}

export function formatTime(value, { seconds = false } = {}) {
  if (!value) return t("never");
  const date = new Date(value);
  const sameDay = today(date) === today();
  const options = { timeZone, hour: "2-digit", minute: "2-digit" };
  if (seconds) options.second = "2-digit";
  if (!sameDay) Object.assign(options, { day: "numeric", month: "short" });
  return new Intl.DateTimeFormat(locale(), options).format(date);
}

export function formatHour(date) {
  return new Intl.DateTimeFormat(locale(), { timeZone, hour: "2-digit", minute: "2-digit" }).format(date);
}

export function formatAgo(value, now = Date.now()) {
  if (!value) return t("never");
  const seconds = Math.max(0, Math.round((now - new Date(value).getTime()) / 1000));
  const format = new Intl.RelativeTimeFormat(locale(), { numeric: "auto", style: "short" });
  if (seconds < 60) return format.format(-seconds, "second");
  if (seconds < 3600) return format.format(-Math.floor(seconds / 60), "minute");
  if (seconds < 86400) return format.format(-Math.floor(seconds / 3600), "hour");
  return format.format(-Math.floor(seconds / 86400), "day");
}

export function formatNumber(value, digits = 0) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value);
}
