// A wearer on the map: a round pin coloured by status, with a symbol (colour is never the only cue).
import L from "./leaflet.js";
import { STATUS_SYMBOL, wearerStatusLabel } from "./labels.js";
import { t, formatAgo } from "./i18n.js";

export function pinIcon(wearer) {
  const html = `<span class="gs-pin st-${wearer.status}" data-wearer-id="${encodeURIComponent(wearer.id)}"><span aria-hidden="true">${STATUS_SYMBOL[wearer.status] || "?"}</span></span>`;
  return L.divIcon({ className: "gs-pin-wrap", html, iconSize: [30, 30], iconAnchor: [15, 15], popupAnchor: [0, -14] });
}

export function pinLabel(wearer) {
  return t("pin_label", { name: wearer.name, status: wearerStatusLabel(wearer.status), ago: formatAgo(wearer.last_seen) });
}

export function updatePin(marker, wearer) {
  const element = marker.getElement();
  if (!element) return;
  const pin = element.querySelector(".gs-pin");
  if (pin) {
    pin.className = `gs-pin st-${wearer.status}`;
    pin.firstChild.textContent = STATUS_SYMBOL[wearer.status] || "?";
  }
  element.setAttribute("aria-label", pinLabel(wearer));
  element.setAttribute("title", pinLabel(wearer));
}
