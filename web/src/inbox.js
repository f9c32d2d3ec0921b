// The alert inbox: open alerts (then those taken but not closed) by severity and age, acted on in one
// click; each alert's timeline on demand. Cards are kept and updated in place, so that a note being typed
// or a focused button survives live updates.
import { get, post } from "./api.js";
import { h, clear, field, uid } from "./dom.js";
import { t, formatTime, formatAgo } from "./i18n.js";
import { OUTCOMES, bySeverityThenAge, kindLabel, alertStatusLabel, outcomeLabel } from "./labels.js";
import { applyAlert, isOverdue } from "./live.js";
import { state, on, isFamily } from "./state.js";
import { announce } from "./announce.js";

function wearerName(id) {
  return state.wearers.get(id)?.name ?? t("unknown_wearer");
}

function actorName(actor) {
  if (!actor) return "";
  const [kind, id] = actor.split(":");
  if (kind === "user" && id === state.user?.id) return t("actor.you");
  if (kind === "contact") return state.contacts.get(id)?.name ?? t("actor.contact");
  return t(`actor.${kind}`, { id: (id || "").slice(0, 8) });
}

async function act(alert, action, body, card) {
  const buttons = card.querySelectorAll("button, select, input, textarea");
  buttons.forEach((b) => (b.disabled = true));
  const error = card.querySelector(".card-error");
  error.textContent = "";
  try {
    const answer = await post(`/api/v1/alerts/${encodeURIComponent(alert.id)}/${action}`, body);
    applyAlert(answer);
    announce(t(`done.${action}`, { kind: kindLabel(alert.kind), wearer: wearerName(alert.wearer_id) }));
  } catch (e) {
    error.textContent = e.message;
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

function timelineView(timeline) {
  const rows = [];
  for (const event of timeline.events) {
    rows.push({ at: event.time, text: t("timeline.event", { kind: kindLabel(event.kind) }) });
  }
  for (const step of timeline.transitions) {
    let text = t(`timeline.${step.action}`, { actor: actorName(step.actor) });
    if (step.outcome) text += ` — ${outcomeLabel(step.outcome)}`;
    if (step.note) text += ` — « ${step.note} »`;
    rows.push({ at: step.at, text });
  }
  for (const n of timeline.notifications) {
    const who = state.contacts.get(n.contact_id)?.name ?? t("actor.contact");
    let text = t("timeline.notification", { contact: who, status: t(`notification.${n.status}`), tries: n.tries });
    if (n.last_error) text += ` (${n.last_error})`;
    rows.push({ at: n.delivered_at || n.handed_at || n.created_at, text });
  }
  rows.sort((a, b) => new Date(a.at) - new Date(b.at));
  const service = timeline.service;
  const figures = service
    ? h("p", { class: "figures" }, t("timeline.figures", {
        shown: service.to_shown_s === null ? "—" : Math.round(service.to_shown_s),
        taken: service.to_taken_s === null ? "—" : Math.round(service.to_taken_s),
      }))
    : null;
  return [
    h("ol", { class: "timeline-list" }, rows.map((r) =>
      h("li", {}, h("time", { datetime: r.at }, formatTime(r.at, { seconds: true })), " ", r.text))),
    figures,
  ];
}

async function toggleTimeline(alert, card, button) {
  const panel = card.querySelector(".timeline");
  const open = button.getAttribute("aria-expanded") === "true";
  button.setAttribute("aria-expanded", String(!open));
  panel.hidden = open;
  if (open) return;
  clear(panel).append(h("p", {}, t("loading")));
  try {
    const timeline = await get(`/api/v1/alerts/${encodeURIComponent(alert.id)}/timeline`);
    clear(panel).append(...timelineView(timeline).filter(Boolean));
  } catch (e) {
    clear(panel).append(h("p", { class: "error" }, e.message));
  }
}

function buildCard(alert, options) {
  const titleId = uid("alert");
  const note = h("input", { type: "text", maxlength: 2000, class: "note", autocomplete: "off" });
  const outcome = h("select", { class: "outcome" }, OUTCOMES.map((o) => h("option", { value: o }, outcomeLabel(o))));
  const card = h("li", { class: "alert-card", dataset: { alertId: alert.id }, "aria-labelledby": titleId });
  const ack = h("button", { type: "button", class: "primary ack" }, t("acknowledge"));
  ack.addEventListener("click", () => act(alert, "acknowledge", { note: note.value || null }, card));
  const resolve = h("button", { type: "button", class: "resolve" }, t("resolve"));
  resolve.addEventListener("click", () => act(alert, "resolve", { outcome: outcome.value, note: note.value || null }, card));
  const timelineButton = h("button", { type: "button", class: "link timeline-toggle", "aria-expanded": "false" }, t("timeline"));
  timelineButton.addEventListener("click", () => toggleTimeline(alert, card, timelineButton));
  const showOnMap = options.onShow
    ? h("button", { type: "button", class: "link", onclick: () => options.onShow(alert) }, t("show_on_map"))
    : null;
  card.append(
    h("div", { class: "alert-head" },
      h("span", { class: `kind-badge sev-${alert.kind}` }, kindLabel(alert.kind)),
      h("a", { id: titleId, class: "wearer-link", href: `#/wearers/${encodeURIComponent(alert.wearer_id)}` }, wearerName(alert.wearer_id)),
      h("span", { class: "alert-status" })),
    h("p", { class: "alert-meta" }),
    h("div", { class: "alert-actions" },
      field(t("note"), note),
      h("div", { class: "buttons" }, ack,
        isFamily() ? null : h("span", { class: "resolve-group" }, field(t("outcome"), outcome), resolve)),
      h("div", { class: "buttons secondary" }, timelineButton, showOnMap)),
    h("p", { class: "card-error error", role: "alert" }),
    h("div", { class: "timeline", hidden: true }),
  );
  return card;
}

function updateCard(card, alert) {
  const overdue = isOverdue(alert);
  card.className = `alert-card status-${alert.status}${overdue ? " overdue" : ""}${card.classList.contains("fresh") ? " fresh" : ""}`;
  card.querySelector(".alert-status").textContent = alertStatusLabel(alert.status) + (overdue ? ` · ${t("overdue")}` : "");
  card.querySelector(".wearer-link").textContent = wearerName(alert.wearer_id);
  const meta = card.querySelector(".alert-meta");
  clear(meta).append(
    t("opened_at", { time: formatTime(alert.opened_at) }), " (", h("time", { datetime: alert.opened_at }, formatAgo(alert.opened_at)), ")",
    alert.event_count > 1 ? ` · ${t("events_count", { count: alert.event_count })}` : "",
  );
  card.querySelector(".ack").hidden = alert.status !== "open";
}

export function createInbox(container, options = {}) {
  const heading = uid("inbox");
  const count = h("span", { class: "count" });
  const list = h("ul", { class: "alert-list", "aria-labelledby": heading });
  const empty = h("p", { class: "empty" }, t("no_alerts"));
  container.append(h("h2", { id: heading }, t("inbox"), " ", count), empty, list);
  const cards = new Map();

  function render() {
    const alerts = [...state.alerts.values()].sort(bySeverityThenAge);
    const open = alerts.filter((a) => a.status === "open").length;
    count.textContent = `(${open})`;
    count.setAttribute("aria-label", t("open_count", { count: open }));
    empty.hidden = alerts.length > 0;
    for (const [id, card] of cards) {
      if (!state.alerts.has(id)) {
        card.remove();
        cards.delete(id);
      }
    }
    alerts.forEach((alert, index) => {
      let card = cards.get(alert.id);
      if (!card) {
        card = buildCard(alert, options);
        cards.set(alert.id, card);
      }
      updateCard(card, alert);
      if (list.children[index] !== card) list.insertBefore(card, list.children[index] || null);
    });
  }

  const offs = [
    on("alerts", render),
    on("wearers", render),
    on("newalert", (alert) => {
      const card = cards.get(alert.id);
      if (!card) return;
      card.classList.add("fresh");
      setTimeout(() => card.classList.remove("fresh"), 30000);
    }),
  ];
  const tick = setInterval(render, 15000);
  render();
  return () => {
    offs.forEach((off) => off());
    clearInterval(tick);
  };
}
