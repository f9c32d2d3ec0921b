// Screen-reader announcements (a polite live region) and the visible banner of new alerts.
import { h, clear } from "./dom.js";

let region = null;

export function announcer() {
  region = h("div", { class: "visually-hidden", "aria-live": "polite", "aria-atomic": "true" });
  return region;
}

export function announce(text) {
  if (!region) return;
  region.textContent = "";
  setTimeout(() => (region.textContent = text), 50);
}

export function banner(element, text, onOpen) {
  clear(element);
  element.hidden = false;
  element.append(
    h("span", { class: "banner-text" }, text),
    onOpen ? h("button", { type: "button", class: "primary", onclick: onOpen }, element.dataset.openLabel || "Open") : null,
    h("button", { type: "button", class: "link", onclick: () => (element.hidden = true), "aria-label": element.dataset.closeLabel || "Close" }, "×"),
  );
}
