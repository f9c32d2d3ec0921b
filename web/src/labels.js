// Names of alert kinds, statuses and outcomes, and the order of severity of the inbox.
import { t } from "./i18n.js";

// Most urgent first: someone may be hurt (SOS, fall), then may be lost or unprotected, then health
// readings, then the device itself.
export const SEVERITY = {
  sos: 0, fall: 1, removed: 2, geofence_exit: 3, geofence_enter: 3, power_off: 4, heart_rate: 5, spo2: 5,
  temperature: 5, inactivity: 6, offline: 7, low_battery: 8,
};

export const OUTCOMES = ["false_alarm", "reassured_by_phone", "assistance_at_home", "emergency_services", "other"];

export const STATUS_SYMBOL = { ok: "✓", alert: "!", offline: "×", low_battery: "▾", unknown: "?" };

export function kindLabel(kind) {
  return t(`kind.${kind}`);
}

export function alertStatusLabel(status) {
  return t(`alertstatus.${status}`);
}

export function wearerStatusLabel(status) {
  return t(`status.${status}`);
}

export function outcomeLabel(outcome) {
  return t(`outcome.${outcome}`);
}

export function bySeverityThenAge(a, b) {
  if ((a.status === "open") !== (b.status === "open")) return a.status === "open" ? -1 : 1;
  const severity = (SEVERITY[a.kind] ?? 9) - (SEVERITY[b.kind] ?? 9);
  if (severity) return severity;
  return new Date(a.opened_at) - new Date(b.opened_at); // the longest waiting first
}
