// The organisation's current state (wearers from /overview, open and acknowledged alerts), kept current
// by the event stream (GET /api/v1/stream: position, device and alert events).
import { all, post } from "./api.js";
import { config } from "./config.js";
import { state, emit } from "./state.js";
import { beep } from "./sound.js";

const DEVICE_KINDS = new Set(["offline", "low_battery"]);
const OVERDUE_MS = 180 * 1000; // open and nobody took it within 180 s
let source = null;
let retry = null;
let reloadTimer = null;
let pendingSeen = new Set();

export function lowBatteryPct() {
  return config.low_battery_pct ?? 15;
}

export function wearerStatus(wearer) {
  const kinds = new Set(wearer.open_alerts.map((a) => a.kind));
  const heard = wearer.devices.filter((d) => d.last_seen);
  if ([...kinds].some((k) => !DEVICE_KINDS.has(k))) return "alert";
  if (kinds.has("offline") || (heard.length && heard.every((d) => d.offline))) return "offline";
  const low = heard.some((d) => d.battery_pct !== null && d.battery_pct < lowBatteryPct());
  if (kinds.has("low_battery") || low) return "low_battery";
  return heard.length ? "ok" : "unknown";
}

export function isOverdue(alert, now = Date.now()) {
  return alert.status === "open" && now - new Date(alert.opened_at).getTime() > OVERDUE_MS;
}

export async function loadWearers() {
  const items = await all("/api/v1/overview", {}, 1000);
  state.wearers = new Map(items.map((w) => [w.id, w]));
  emit("wearers");
}

export async function loadAlerts() {
  const [open, taken] = await Promise.all([
    all("/api/v1/alerts", { status: "open" }),
    all("/api/v1/alerts", { status: "acknowledged" }),
  ]);
  state.alerts = new Map([...open, ...taken].map((a) => [a.id, a]));
  emit("alerts");
}

export async function loadAll() {
  await Promise.all([loadWearers(), loadAlerts()]);
}

function reloadWearersSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => loadWearers().catch(() => {}), 1000);
}

function touchWearer(wearerId, change) {
  const wearer = state.wearers.get(wearerId);
  if (!wearer) {
    reloadWearersSoon(); // a wearer added since the page loaded
    return;
  }
  change(wearer);
  wearer.status = wearerStatus(wearer);
  emit("wearer", wearer);
}

function onPosition(data) {
  if (!data.wearer_id) return;
  touchWearer(data.wearer_id, (wearer) => {
    wearer.position = { time: data.time, latitude: data.latitude, longitude: data.longitude };
    const device = wearer.devices.find((d) => d.id === data.device_id);
    if (device) {
      device.last_seen = new Date().toISOString();
      device.offline = false;
      if (data.battery_pct !== null && data.battery_pct !== undefined) device.battery_pct = data.battery_pct;
    }
    wearer.last_seen = new Date().toISOString();
    if (data.battery_pct !== null && data.battery_pct !== undefined) wearer.battery_pct = data.battery_pct;
  });
  emit("position", data);
}

function onDevice(data) {
  if (!data.wearer_id) return;
  touchWearer(data.wearer_id, (wearer) => {
    const device = wearer.devices.find((d) => d.id === data.device_id);
    if (!device) return;
    if (data.status === "offline") device.offline = true;
    if (data.status === "online") {
      device.offline = false;
      device.last_seen = data.time;
    }
    if (data.battery_pct !== null && data.battery_pct !== undefined) device.battery_pct = data.battery_pct;
  });
}

export function markSeen(alertId) {
  if (document.visibilityState !== "visible") {
    pendingSeen.add(alertId);
    return;
  }
  post(`/api/v1/alerts/${encodeURIComponent(alertId)}/seen`).catch(() => {});
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible") return;
  const waiting = pendingSeen;
  pendingSeen = new Set();
  waiting.forEach(markSeen);
});

// An alert as it now is (from the stream or from an action's answer).
export function applyAlert(alert, change) {
  const before = state.alerts.get(alert.id);
  const wasOpen = before?.status === "open";
  if (alert.status === "resolved") state.alerts.delete(alert.id);
  else state.alerts.set(alert.id, { ...before, ...alert });
  touchWearer(alert.wearer_id, (wearer) => {
    wearer.open_alerts = wearer.open_alerts.filter((a) => a.id !== alert.id);
    if (alert.status === "open") wearer.open_alerts.push({ id: alert.id, kind: alert.kind, opened_at: alert.opened_at });
  });
  emit("alerts");
  const isNew = change === "opened" || change === "reopened" || (alert.status === "open" && !wasOpen && change);
  if (isNew) {
    beep();
    emit("newalert", alert);
    markSeen(alert.id);
  }
}

export function openStream() {
  closeStream();
  state.live = "connecting";
  emit("live");
  source = new EventSource("/api/v1/stream");
  const json = (handler) => (event) => {
    try {
      handler(JSON.parse(event.data));
    } catch (error) {
      console.error("stream event", error);
    }
  };
  source.addEventListener("ready", json(() => loadAll().catch(() => {})));
  source.addEventListener("position", json(onPosition));
  source.addEventListener("device", json(onDevice));
  source.addEventListener("alert", json((data) => applyAlert(data, data.change)));
  source.onopen = () => {
    state.live = "open";
    emit("live");
  };
  source.onerror = () => {
    state.live = source && source.readyState === EventSource.CLOSED ? "closed" : "connecting";
    emit("live");
    if (source && source.readyState === EventSource.CLOSED) {
      // Refused (the session ended?) or the service is gone: try again, the API tells which.
      clearTimeout(retry);
      retry = setTimeout(() => emit("streamclosed"), 5000);
    }
  };
}

export function closeStream() {
  clearTimeout(retry);
  if (source) source.close();
  source = null;
}
