// A wearer's page: the day's trail on the map, their geofences drawn and edited on it (circle, polygon),
// their vital-sign charts, their devices' status and the "locate now" command.
import L from "./leaflet.js";
import { get, post, del, ApiError } from "./api.js";
import { geometryFromMap, geometryToMap, toMap, fromMap } from "./coords.js";
import { lineChart } from "./charts.js";
import { h, clear, field, uid } from "./dom.js";
import { t, language, formatTime, formatAgo, formatNumber, today, startOfDay, addDays } from "./i18n.js";
import { STATUS_SYMBOL, wearerStatusLabel, kindLabel } from "./labels.js";
import { dayTrail, newMap } from "./mapview.js";
import { pinIcon, updatePin } from "./markers.js";
import { announce } from "./announce.js";
import { state, on, isFamily } from "./state.js";

const FENCE_STYLE = {
  safe: { color: "#0550ae", weight: 2, fillOpacity: 0.12, pmIgnore: false },
  danger: { color: "#cf222e", weight: 2, dashArray: "6 4", fillOpacity: 0.15, pmIgnore: false },
};

function fenceLayer(feature) {
  const { geometry, properties } = feature;
  const style = { ...FENCE_STYLE[properties.kind] };
  const shown = geometryToMap(geometry);
  let layer;
  if (geometry.type === "Point") {
    layer = L.circle([shown.coordinates[1], shown.coordinates[0]], { ...style, radius: properties.radius_m });
  } else if (geometry.type === "Polygon") {
    layer = L.polygon(shown.coordinates.map((ring) => ring.map(([x, y]) => [y, x])), style);
  } else if (geometry.type === "MultiPolygon") {
    layer = L.polygon(shown.coordinates.map((poly) => poly.map((ring) => ring.map(([x, y]) => [y, x]))), style);
  } else {
    layer = L.geoJSON(shown, { style: { ...style, weight: 6, pmIgnore: true }, pmIgnore: true });
  }
  layer.feature = feature;
  layer.bindTooltip(`${properties.name} (${t(`fence.${properties.kind}`)})`);
  return layer;
}

// The drawn shape as the API's GeoJSON (WGS-84): a circle is a Point with radius_m.
function drawnGeometry(layer) {
  if (layer instanceof L.Circle) {
    const c = layer.getLatLng();
    const [lat, lon] = fromMap(c.lat, c.lng);
    return { geometry: { type: "Point", coordinates: [lon, lat] }, radius_m: Math.round(layer.getRadius() * 10) / 10 };
  }
  const ring = layer.getLatLngs()[0].map((p) => [p.lng, p.lat]);
  ring.push(ring[0]);
  return { geometry: geometryFromMap({ type: "Polygon", coordinates: [ring] }), radius_m: null };
}

function fenceDialog(onSave, onCancel) {
  const name = h("input", { type: "text", required: true, maxlength: 200, name: "name", value: t("fence.default_name") });
  const kind = h("select", { name: "kind" }, ["safe", "danger"].map((k) => h("option", { value: k }, t(`fence.${k}`))));
  const scope = h("select", { name: "scope" },
    h("option", { value: "wearer" }, t("fence.for_wearer")), h("option", { value: "org" }, t("fence.for_everyone")));
  const error = h("p", { class: "error", role: "alert" });
  const titleId = uid("dlg");
  const dialog = h("dialog", { class: "fence-dialog", "aria-labelledby": titleId });
  const form = h("form", { method: "dialog" },
    h("h2", { id: titleId }, t("fence.new")),
    field(t("fence.name"), name), field(t("fence.kind"), kind), field(t("fence.applies_to"), scope), error,
    h("p", { class: "buttons" },
      h("button", { type: "submit", class: "primary", value: "save" }, t("save")),
      h("button", { type: "button", value: "cancel", onclick: () => dialog.close("cancel") }, t("cancel"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!name.value.trim()) return;
    try {
      await onSave({ name: name.value.trim(), kind: kind.value, scope: scope.value });
      dialog.close("saved");
    } catch (e) {
      error.textContent = e.message;
    }
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "saved") onCancel();
    dialog.remove();
  });
  dialog.append(form);
  document.body.append(dialog);
  dialog.showModal();
  name.select();
}

function deviceCard(device, refresh) {
  const result = h("p", { class: "command-result", role: "status" });
  const locate = h("button", { type: "button", class: "primary" }, t("locate_now"));
  locate.addEventListener("click", async () => {
    locate.disabled = true;
    result.textContent = t("sending");
    try {
      const answer = await post(`/api/v1/devices/${encodeURIComponent(device.id)}/commands`, { kind: "locate" });
      result.textContent = t("locate_sent", { delivery: answer.delivery });
      setTimeout(refresh, 3000);
    } catch (e) {
      result.textContent = e.message;
    } finally {
      locate.disabled = false;
    }
  });
  const battery = device.battery_pct === null ? "—" : `${formatNumber(device.battery_pct)} %`;
  return h("li", { class: "device" },
    h("h3", {}, device.model || device.protocol, " ", h("span", { class: "muted" }, device.unique_id)),
    h("dl", {},
      h("dt", {}, t("connection")), h("dd", {}, device.last_seen ? (device.offline ? t("device.offline") : t("device.online")) : t("device.never")),
      h("dt", {}, t("last_seen")), h("dd", {}, device.last_seen ? `${formatTime(device.last_seen)} (${formatAgo(device.last_seen)})` : "—"),
      h("dt", {}, t("battery")), h("dd", {}, battery),
      h("dt", {}, t("protocol")), h("dd", {}, device.protocol)),
    isFamily() ? null : h("p", { class: "buttons" }, locate),
    result);
}

export function renderWearer(main, wearerId) {
  const wearer = () => state.wearers.get(wearerId);
  const title = h("h1", {}, wearer()?.name ?? t("loading"));
  const status = h("p", { class: "status-line" });
  const day = h("input", { type: "date", value: today(), max: today() });
  const mapElement = h("div", { class: "map wearer-map", id: "wearer-map", role: "region", tabindex: "0" });
  const trailInfo = h("p", { class: "trail-info", "aria-live": "polite" });
  const fenceList = h("ul", { class: "fence-list" });
  const devices = h("ul", { class: "devices" });
  const charts = h("div", { class: "charts" });
  const quickName = h("input", { type: "text", maxlength: 200, value: t("fence.home") });
  const quickRadius = h("input", { type: "number", min: 20, max: 5000, step: 10, value: 200 });
  const quickKind = h("select", {}, ["safe", "danger"].map((k) => h("option", { value: k }, t(`fence.${k}`))));
  const quickError = h("p", { class: "error", role: "alert" });
  const quickForm = h("form", { class: "quick-fence" },
    h("h3", {}, t("fence.quick")),
    field(t("fence.name"), quickName), field(t("fence.radius"), quickRadius), field(t("fence.kind"), quickKind),
    h("p", { class: "buttons" }, h("button", { type: "submit" }, t("fence.add"))), quickError);
  main.append(
    h("div", { class: "wearer-page" },
      h("p", {}, h("a", { href: "#/" }, "← ", t("back_to_map"))),
      h("header", { class: "wearer-head" }, title, status, field(t("day"), day)),
      h("div", { class: "wearer-grid" },
        h("section", { class: "map-column", "aria-label": t("map_and_zones") }, mapElement, trailInfo,
          h("p", { class: "hint" }, isFamily() ? "" : t("fence.draw_hint"))),
        h("div", { class: "side" },
          h("section", { class: "panel" }, h("h2", {}, t("zones")), fenceList, isFamily() ? null : quickForm),
          h("section", { class: "panel" }, h("h2", {}, t("devices")), devices))),
      h("section", { class: "panel" }, h("h2", {}, t("vitals")), charts)),
  );

  const map = newMap(mapElement, state.org?.region);
  const fences = L.featureGroup().addTo(map);
  let trail = null;
  let pin = null;
  let fitted = false;

  function renderHead() {
    const w = wearer();
    if (!w) return;
    title.textContent = w.name;
    document.title = `${w.name} — GeoSentinel`;
    clear(status).append(
      h("span", { class: `gs-pin mini st-${w.status}`, "aria-hidden": "true" }, STATUS_SYMBOL[w.status]), " ",
      wearerStatusLabel(w.status), " · ", t("last_seen"), " ", formatAgo(w.last_seen),
      w.open_alerts.length ? ` · ${w.open_alerts.map((a) => kindLabel(a.kind)).join(", ")}` : "");
    clear(devices).append(...w.devices.map((d) => deviceCard(d, renderHead)));
    if (!w.devices.length) devices.append(h("li", { class: "muted" }, t("no_devices")));
    if (w.position) {
      const at = toMap(w.position.latitude, w.position.longitude);
      if (!pin) pin = L.marker(at, { icon: pinIcon(w), pmIgnore: true, keyboard: true }).addTo(map);
      else pin.setLatLng(at);
      updatePin(pin, w);
    }
  }

  function renderFenceList() {
    const items = [];
    fences.eachLayer((layer) => {
      const { properties, geometry, id } = layer.feature;
      const shape = geometry.type === "Point" ? t("fence.circle", { radius: formatNumber(properties.radius_m) }) : t("fence.polygon");
      const scope = properties.wearer_id ? t("fence.for_wearer") : t("fence.for_everyone");
      items.push(h("li", { class: `fence kind-${properties.kind}`, dataset: { fenceId: id } },
        h("strong", {}, properties.name), ` · ${t(`fence.${properties.kind}`)} · ${shape} · ${scope} `,
        isFamily() ? null : h("button", { type: "button", class: "link danger", onclick: () => removeFence(layer), "aria-label": t("fence.delete_named", { name: properties.name }) }, t("delete"))));
    });
    clear(fenceList).append(...items);
    if (!items.length) fenceList.append(h("li", { class: "muted" }, t("fence.none")));
  }

  async function loadFences() {
    const collection = await get("/api/v1/geofences", { wearer_id: wearerId, limit: 1000 });
    fences.clearLayers();
    for (const feature of collection.features) fences.addLayer(fenceLayer(feature));
    renderFenceList();
  }

  async function createFence(geometry, radius_m, { name, kind, scope }) {
    const body = { type: "Feature", geometry, properties: { name, kind, wearer_id: scope === "org" ? null : wearerId, radius_m } };
    const created = await post("/api/v1/geofences", body);
    fences.addLayer(fenceLayer(created));
    renderFenceList();
    announce(t("fence.saved", { name }));
    return created;
  }

  async function removeFence(layer) {
    try {
      await del(`/api/v1/geofences/${encodeURIComponent(layer.feature.id)}`);
      fences.removeLayer(layer);
      renderFenceList();
      announce(t("fence.deleted", { name: layer.feature.properties.name }));
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
  }

  // The API has no update: an edited fence is saved as a new one, then the old one is deleted.
  async function saveEdited(layer) {
    const { geometry, radius_m } = drawnGeometry(layer);
    const { properties, id } = layer.feature;
    const body = { type: "Feature", geometry, properties: { ...properties, radius_m: radius_m ?? properties.radius_m } };
    if (geometry.type !== "Point") body.properties.radius_m = null;
    const created = await post("/api/v1/geofences", body);
    await del(`/api/v1/geofences/${encodeURIComponent(id)}`);
    layer.feature = created;
    renderFenceList();
    announce(t("fence.saved", { name: properties.name }));
  }

  if (!isFamily()) {
    map.pm.setLang(language());
    map.pm.addControls({
      position: "topleft", drawMarker: false, drawCircleMarker: false, drawPolyline: false, drawRectangle: false,
      drawText: false, cutPolygon: false, rotateMode: false, dragMode: false, drawCircle: true, drawPolygon: true,
      editMode: true, removalMode: true,
    });
    map.pm.setPathOptions({ color: "#0550ae", fillOpacity: 0.12 });
    map.on("pm:create", ({ layer }) => {
      const { geometry, radius_m } = drawnGeometry(layer);
      fenceDialog(async (answers) => {
        await createFence(geometry, radius_m, answers);
        layer.remove();
      }, () => layer.remove());
    });
    map.on("pm:remove", ({ layer }) => {
      if (layer.feature?.id) removeFence(layer).catch((e) => announce(e.message));
    });
    fences.on("pm:edit", ({ layer }) => saveEdited(layer).catch((e) => announce(e.message)));
  }

  quickForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    quickError.textContent = "";
    const w = wearer();
    if (!w?.position) {
      quickError.textContent = t("fence.no_position");
      return;
    }
    try {
      const point = { type: "Point", coordinates: [w.position.longitude, w.position.latitude] };
      await createFence(point, Number(quickRadius.value), { name: quickName.value.trim() || t("fence.home"), kind: quickKind.value, scope: "wearer" });
    } catch (e) {
      quickError.textContent = e.message;
    }
  });

  async function loadDay() {
    const chosen = day.value || today();
    const since = startOfDay(chosen);
    const until = startOfDay(addDays(chosen, 1));
    try {
      const fixes = await dayTrail(wearerId, chosen);
      if (trail) trail.remove();
      trail = L.polyline(fixes.map((f) => toMap(f.latitude, f.longitude)), { color: "#0550ae", weight: 3, pmIgnore: true }).addTo(map);
      trailInfo.textContent = t("trail_count", { count: fixes.length });
      if (!fitted) {
        const bounds = trail.getBounds();
        if (fences.getLayers().length) bounds.extend(fences.getBounds());
        if (pin) bounds.extend(pin.getLatLng());
        if (bounds.isValid()) map.fitBounds(bounds, { padding: [30, 30], maxZoom: 16 });
        else map.setView([43.2965, 5.3698], 3);
        fitted = true;
      }
    } catch (e) {
      trailInfo.textContent = e.message;
    }
    try {
      const vitals = await get(`/api/v1/wearers/${encodeURIComponent(wearerId)}/vitals`, { since: since.toISOString(), until: until.toISOString(), limit: 10000 });
      const series = (key) => vitals.filter((v) => v[key] !== null).map((v) => [new Date(v.time), v[key]]);
      clear(charts).append(
        lineChart({ title: t("heart_rate"), unit: "bpm", points: series("heart_rate_bpm"), domain: [since, until], color: "#cf222e" }),
        lineChart({ title: t("spo2"), unit: "%", points: series("spo2_pct"), domain: [since, until], color: "#0550ae", ceiling: 100 }),
        lineChart({ title: t("steps"), unit: "", points: series("steps"), domain: [since, until], color: "#1a7f37", floor: 0 }),
        lineChart({ title: t("battery"), unit: "%", points: series("battery_pct"), domain: [since, until], color: "#7d4e00", floor: 0, ceiling: 100 }));
    } catch (e) {
      clear(charts).append(h("p", { class: "error" }, e.message));
    }
  }

  day.addEventListener("change", () => {
    fitted = false;
    loadDay();
  });
  const offs = [
    on("wearers", renderHead),
    on("wearer", (w) => w.id === wearerId && renderHead()),
    on("position", (fix) => {
      if (fix.wearer_id === wearerId && trail && day.value === today()) trail.addLatLng(toMap(fix.latitude, fix.longitude));
    }),
  ];
  renderHead();
  loadFences().then(loadDay).catch((e) => (trailInfo.textContent = e.message));
  return () => {
    offs.forEach((off) => off());
    map.remove();
  };
}
