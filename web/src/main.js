// The dashboard's entry point: session (login, logout), the page's frame (navigation, language, sound,
// live status, the new-alert banner) and the views by URL hash: #/ map and inbox, #/alerts inbox,
// #/wearers/<id> a wearer's day, #/settings contacts and policies.
import { api, get, del, setCsrf, onUnauthorized, ApiError } from "./api.js";
import { gcj02ToWgs84, wgs84ToGcj02 } from "./coords.js";
import { h, clear, field } from "./dom.js";
import { LANGUAGES, initialLanguage, setLanguage, language, setTimeZone, t } from "./i18n.js";
import { kindLabel } from "./labels.js";
import { loadAll, openStream, closeStream } from "./live.js";
import { renderMapView } from "./mapview.js";
import { createInbox } from "./inbox.js";
import { renderWearer } from "./wearer.js";
import { renderSettings, loadContacts } from "./settings.js";
import { announcer, banner } from "./announce.js";
import { cues, unlockAudio, soundEnabled, setSoundEnabled } from "./sound.js";
import { state, on, isFamily } from "./state.js";

// For diagnostics and the tests: the bundled conversion functions and the cue counters.
window.GeoSentinel = Object.freeze({ coords: Object.freeze({ wgs84ToGcj02, gcj02ToWgs84 }), cues });

const root = document.getElementById("app");
let closeView = () => {};

function languageSelect(onChange) {
  const select = h("select", { id: "lang", class: "lang" }, LANGUAGES.map(([code, label]) => h("option", { value: code, lang: code }, label)));
  select.value = language();
  select.addEventListener("change", () => {
    setLanguage(select.value, true);
    onChange();
  });
  return field(t("language"), select);
}

function renderLogin(message) {
  closeView();
  closeStream();
  document.title = "GeoSentinel";
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const submit = h("button", { type: "submit", class: "primary" }, t("login.submit"));
  const form = h("form", { class: "login-form", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, t("login.title")),
    h("p", { class: "muted" }, t("login.intro")),
    field(t("login.email"), email), field(t("login.password"), password), error,
    h("p", { class: "buttons" }, submit));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    unlockAudio();
    submit.disabled = true;
    error.textContent = "";
    try {
      const session = await api("POST", "/api/v1/session", { email: email.value.trim(), password: password.value }, { quiet: true });
      await start(session);
    } catch (e) {
      error.textContent = e.message;
      submit.disabled = false;
      password.select();
    }
  });
  clear(root).append(
    h("main", { class: "login", id: "main" }, h("div", { class: "login-brand", "aria-hidden": "true" }, "GeoSentinel"), form,
      h("div", { class: "login-lang" }, languageSelect(() => renderLogin(error.textContent)))));
  email.focus();
}

async function logout() {
  try {
    await del("/api/v1/session");
  } catch {
    /* the session may have ended already */
  }
  setCsrf(null);
  state.user = null;
  renderLogin();
}

function liveLabel() {
  return t(`live.${state.live}`);
}

function frame() {
  const nav = h("nav", { class: "nav", "aria-label": t("nav.label") },
    h("a", { href: "#/", dataset: { route: "map" } }, t("nav.map")),
    h("a", { href: "#/alerts", dataset: { route: "alerts" } }, t("nav.alerts"), " ", h("span", { class: "nav-count", id: "nav-count" })),
    isFamily() ? null : h("a", { href: "#/settings", dataset: { route: "settings" } }, t("nav.settings")));
  const sound = h("input", { type: "checkbox", id: "sound", checked: soundEnabled() });
  sound.addEventListener("change", () => {
    setSoundEnabled(sound.checked);
    unlockAudio();
  });
  const live = h("span", { class: `live live-${state.live}`, id: "live", role: "status" }, liveLabel());
  const alertBanner = h("div", { class: "banner", id: "alert-banner", role: "alert", hidden: true,
    dataset: { openLabel: t("banner.open"), closeLabel: t("close") } });
  const header = h("header", { class: "topbar" },
    h("a", { class: "skip", href: "#main" , onclick: (e) => { e.preventDefault(); document.getElementById("main").focus(); } }, t("skip")),
    h("a", { class: "brand", href: "#/" }, "GeoSentinel"),
    h("span", { class: "org muted" }, state.org?.name || ""),
    nav,
    h("div", { class: "tools" },
      live,
      h("span", { class: "field checkbox" }, sound, h("label", { for: "sound" }, t("sound"))),
      languageSelect(() => {
        renderFrame();
      }),
      h("span", { class: "user muted" }, state.user.display_name || state.user.email),
      h("button", { type: "button", class: "logout", onclick: logout }, t("logout"))));
  return { header, alertBanner };
}

function route() {
  const hash = location.hash || "#/";
  const wearer = hash.match(/^#\/wearers\/([^/?]+)/);
  if (wearer) return ["wearer", decodeURIComponent(wearer[1])];
  if (hash.startsWith("#/alerts")) return ["alerts"];
  if (hash.startsWith("#/settings") && !isFamily()) return ["settings"];
  return ["map"];
}

function showView() {
  const main = document.getElementById("main");
  if (!main) return;
  closeView();
  clear(main);
  const [name, id] = route();
  document.querySelectorAll(".nav a").forEach((a) => {
    if (a.dataset.route === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  document.title = `${t(`title.${name}`)} — GeoSentinel`;
  if (name === "wearer") closeView = renderWearer(main, id);
  else if (name === "settings") closeView = renderSettings(main);
  else if (name === "alerts") {
    const panel = h("section", { class: "panel inbox inbox-page" });
    main.append(h("h1", { class: "visually-hidden" }, t("inbox")), panel);
    closeView = createInbox(panel, { onShow: (alert) => (location.hash = `#/wearers/${encodeURIComponent(alert.wearer_id)}`) });
  } else closeView = renderMapView(main);
}

function updateCount() {
  const count = document.getElementById("nav-count");
  if (!count) return;
  const open = [...state.alerts.values()].filter((a) => a.status === "open").length;
  count.textContent = open ? String(open) : "";
  count.classList.toggle("has-open", open > 0);
  document.title = document.title.replace(/^\(\d+\) /, "");
  if (open) document.title = `(${open}) ${document.title}`;
}

function renderFrame() {
  closeView();
  closeView = () => {};
  const { header, alertBanner } = frame();
  const main = h("main", { id: "main", tabindex: "-1" });
  clear(root).append(header, alertBanner, main, announcer());
  showView();
  updateCount();
}

async function start(session) {
  setCsrf(session.csrf_token);
  state.user = session.user;
  try {
    state.org = await get("/api/v1/organisation", undefined, { quiet: true });
  } catch (e) {
    // Older services have no /organisation: the browser's zone and no region.
    if (!(e instanceof ApiError) || e.status === 401) throw e;
    state.org = { id: session.user.org_id, name: "", region: "eu", timezone: Intl.DateTimeFormat().resolvedOptions().timeZone, locale: null };
  }
  setTimeZone(state.org.timezone);
  setLanguage(initialLanguage(state.org.locale));
  await loadAll();
  if (!isFamily()) await loadContacts().catch(() => {});
  renderFrame();
  openStream();
}

on("alerts", updateCount);
on("live", () => {
  const live = document.getElementById("live");
  if (!live) return;
  live.className = `live live-${state.live}`;
  live.textContent = liveLabel();
});
on("newalert", (alert) => {
  const element = document.getElementById("alert-banner");
  if (!element) return;
  const name = state.wearers.get(alert.wearer_id)?.name ?? t("unknown_wearer");
  banner(element, t("banner.new", { kind: kindLabel(alert.kind), wearer: name }), () => {
    element.hidden = true;
    location.hash = "#/alerts";
  });
});
on("streamclosed", async () => {
  if (!state.user) return;
  try {
    await get("/api/v1/session"); // a 401 here shows the login page
    openStream();
  } catch {
    /* onUnauthorized took over, or the service is away: the next error retries */
    setTimeout(() => state.user && openStream(), 10000);
  }
});

onUnauthorized(() => {
  if (state.user) {
    state.user = null;
    renderLogin(t("login.expired"));
  }
});
window.addEventListener("hashchange", () => state.user && showView());
document.addEventListener("pointerdown", unlockAudio, { once: true });
document.addEventListener("keydown", unlockAudio, { once: true });

async function boot() {
  setLanguage(initialLanguage(null));
  try {
    const session = await api("GET", "/api/v1/session", undefined, { quiet: true });
    await start(session);
  } catch (e) {
    renderLogin(e instanceof ApiError && e.status !== 401 ? e.message : "");
  }
}

if (root) boot();
