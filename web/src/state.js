// What the page knows: the session, the organisation, wearers (from /overview) and alerts, and a small
// event bus the views subscribe to.
export const state = {
  user: null, // {id, org_id, email, role, display_name}
  org: null, // {id, name, region, timezone, locale}
  wearers: new Map(), // id -> overview item {id, name, status, position, last_seen, battery_pct, open_alerts, devices}
  alerts: new Map(), // id -> alert (open or acknowledged)
  contacts: new Map(), // id -> contact (caregivers and admins only)
  live: "connecting", // connecting, open, closed
};

const listeners = new Map();

export function on(name, fn) {
  if (!listeners.has(name)) listeners.set(name, new Set());
  listeners.get(name).add(fn);
  return () => listeners.get(name).delete(fn);
}

export function emit(name, data) {
  for (const fn of [...(listeners.get(name) || [])]) {
    try {
      fn(data);
    } catch (error) {
      console.error(`listener of ${name} failed`, error);
    }
  }
}

export function isFamily() {
  return state.user?.role === "family";
}

export function isAdmin() {
  return state.user?.role === "admin";
}
