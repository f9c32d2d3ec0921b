// The live map: every wearer at their last position, coloured by status, the day's trail of the one
// selected; beside it the alert inbox and the list of wearers.
import L from "./leaflet.js";
import { get } from "./api.js";
import { addBasemap } from "./basemap.js";
import { setDatum, toMap } from "./coords.js";
import { h, clear } from "./dom.js";
import { t, formatTime, formatAgo, formatNumber, today, startOfDay } from "./i18n.js";
import { createInbox } from "./inbox.js";
import { kindLabel, wearerStatusLabel, STATUS_SYMBOL } from "./labels.js";
import { pinIcon, pinLabel, updatePin } from "./markers.js";
import { state, on } from "./state.js";

const DEFAULT_VIEW = { eu: [[36, -10], [60, 25]], cn: [[20, 100], [45, 125]] };

export function newMap(element, region) {
  const map = L.map(element, { zoomControl: true, preferCanvas: false, worldCopyJump: true, keyboard: true });
  setDatum(addBasemap(map, region));
  map.getContainer().setAttribute("aria-label", t("map_label"));
  return map;
}

export async function dayTrail(wearerId, day = today()) {
  const since = startOfDay(day);
  const until = startOfDay(nextDay(day));
  const fixes = await get(`/api/v1/wearers/${encodeURIComponent(wearerId)}/positions`, {
    since: since.toISOString(), until: until.toISOString(), limit: 10000,
  });
  return fixes.reverse(); // oldest first
}

function nextDay(day) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

function popupContent(wearer, onTrail) {
  const battery = wearer.battery_pct === null ? "—" : `${formatNumber(wearer.battery_pct)} %`;
  return h("div", { class: "popup" },
    h("h3", {}, wearer.name),
    h("p", { class: `status-line st-${wearer.status}` }, h("span", { class: "dot", "aria-hidden": "true" }, STATUS_SYMBOL[wearer.status]), " ", wearerStatusLabel(wearer.status)),
    h("dl", {},
      h("dt", {}, t("last_seen")), h("dd", {}, `${formatTime(wearer.last_seen)} (${formatAgo(wearer.last_seen)})`),
      h("dt", {}, t("position_time")), h("dd", {}, wearer.position ? formatTime(wearer.position.time) : "—"),
      h("dt", {}, t("battery")), h("dd", {}, battery)),
    wearer.open_alerts.length
      ? h("ul", { class: "popup-alerts" }, wearer.open_alerts.map((a) => h("li", {}, kindLabel(a.kind), " · ", formatAgo(a.opened_at))))
      : null,
    h("p", { class: "buttons" },
      h("button", { type: "button", class: "link", onclick: onTrail }, t("show_trail")),
      h("a", { href: `#/wearers/${encodeURIComponent(wearer.id)}` }, t("open_wearer"))),
  );
}

export function renderMapView(main) {
  const mapElement = h("div", { class: "map", id: "live-map", role: "region", tabindex: "0" });
  const inbox = h("section", { class: "panel inbox" });
  const list = h("ul", { class: "wearer-list" });
  const legend = h("ul", { class: "legend", "aria-label": t("legend") },
    ["ok", "alert", "offline", "low_battery"].map((s) =>
      h("li", {}, h("span", { class: `gs-pin mini st-${s}`, "aria-hidden": "true" }, STATUS_SYMBOL[s]), " ", wearerStatusLabel(s))));
  const trailInfo = h("p", { class: "trail-info", "aria-live": "polite" });
  main.append(
    h("div", { class: "layout-map" },
      h("section", { class: "map-column", "aria-label": t("live_map") }, h("h1", { class: "visually-hidden" }, t("live_map")), mapElement, legend, trailInfo),
      h("div", { class: "side" }, inbox,
        h("section", { class: "panel wearers" }, h("h2", {}, t("wearers")), list))),
  );
  const map = newMap(mapElement, state.org?.region);
  const markers = new Map();
  const trail = { wearerId: null, line: null };
  let fitted = false;

  function showTrail(wearer) {
    trail.wearerId = wearer.id;
    dayTrail(wearer.id).then((fixes) => {
      if (trail.wearerId !== wearer.id) return;
      if (trail.line) trail.line.remove();
      trail.line = L.polyline(fixes.map((f) => toMap(f.latitude, f.longitude)), { color: "#0550ae", weight: 3, opacity: 0.8 }).addTo(map);
      trailInfo.textContent = t("trail_of", { name: wearer.name, count: fixes.length });
      if (fixes.length > 1) map.fitBounds(trail.line.getBounds(), { padding: [30, 30], maxZoom: 17 });
    }).catch((e) => (trailInfo.textContent = e.message));
  }

  function placeMarker(wearer) {
    let marker = markers.get(wearer.id);
    if (!wearer.position) {
      if (marker) marker.remove();
      markers.delete(wearer.id);
      return;
    }
    const at = toMap(wearer.position.latitude, wearer.position.longitude);
    if (!marker) {
      marker = L.marker(at, { icon: pinIcon(wearer), keyboard: true, title: pinLabel(wearer), riseOnHover: true });
      const current = () => state.wearers.get(wearer.id) || wearer;
      marker.bindPopup(() => popupContent(current(), () => showTrail(current())), { maxWidth: 280 });
      marker.addTo(map);
      markers.set(wearer.id, marker);
    } else {
      marker.setLatLng(at);
    }
    marker.setZIndexOffset(wearer.status === "alert" ? 1000 : 0);
    updatePin(marker, wearer);
  }

  function listItem(wearer) {
    return h("li", { class: `st-${wearer.status}`, dataset: { wearerId: wearer.id } },
      h("span", { class: `gs-pin mini st-${wearer.status}`, "aria-hidden": "true" }, STATUS_SYMBOL[wearer.status]),
      h("a", { href: `#/wearers/${encodeURIComponent(wearer.id)}` }, wearer.name),
      h("span", { class: "muted" }, ` ${wearerStatusLabel(wearer.status)}${wearer.last_seen ? ` · ${formatAgo(wearer.last_seen)}` : ""}`),
      wearer.position ? h("button", { type: "button", class: "link", onclick: () => focusWearer(wearer.id) }, t("locate_on_map")) : null);
  }

  function focusWearer(id) {
    const marker = markers.get(id);
    if (!marker) return;
    map.setView(marker.getLatLng(), Math.max(map.getZoom(), 15));
    marker.openPopup();
    marker.getElement()?.focus();
  }

  // The list is rebuilt when a status changes (its order may change) and every 30 s (the "ago" times);
  // focus stays on the same wearer's link or button.
  function renderList() {
    const order = { alert: 0, offline: 1, low_battery: 2, ok: 3, unknown: 4 };
    const wearers = [...state.wearers.values()].sort((a, b) => order[a.status] - order[b.status] || a.name.localeCompare(b.name));
    const focused = list.contains(document.activeElement) ? document.activeElement : null;
    const focusKey = focused && [focused.closest("li")?.dataset.wearerId, focused.tagName];
    clear(list).append(...wearers.map(listItem));
    if (!wearers.length) list.append(h("li", { class: "empty" }, t("no_wearers")));
    if (focusKey) list.querySelector(`li[data-wearer-id="${CSS.escape(focusKey[0] || "")}"] ${focusKey[1].toLowerCase()}`)?.focus();
  }

  function renderAll() {
    for (const id of [...markers.keys()]) if (!state.wearers.has(id)) { markers.get(id).remove(); markers.delete(id); }
    for (const wearer of state.wearers.values()) placeMarker(wearer);
    renderList();
    if (!fitted) {
      const points = [...markers.values()].map((m) => m.getLatLng());
      if (points.length) map.fitBounds(L.latLngBounds(points), { padding: [40, 40], maxZoom: 15 });
      else map.fitBounds(DEFAULT_VIEW[state.org?.region] || DEFAULT_VIEW.eu);
      fitted = true;
    }
  }

  const offs = [
    on("wearers", renderAll),
    on("wearer", (wearer) => {
      placeMarker(wearer);
      const shown = list.querySelector(`li[data-wearer-id="${CSS.escape(wearer.id)}"]`);
      if (!shown || !shown.classList.contains(`st-${wearer.status}`)) renderList();
    }),
    on("position", (fix) => {
      if (trail.line && fix.wearer_id === trail.wearerId) trail.line.addLatLng(toMap(fix.latitude, fix.longitude));
    }),
  ];
  const closeInbox = createInbox(inbox, { onShow: (alert) => focusWearer(alert.wearer_id) });
  renderAll();
  const tick = setInterval(renderList, 30000);
  return () => {
    offs.forEach((off) => off());
    closeInbox();
    clearInterval(tick);
    map.remove();
  };
}
