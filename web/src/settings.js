// Settings: the organisation's contacts (who gets alerted, through which channels) and escalation
// policies (who is called in which order), ready-made ones from templates or written by hand.
import { all, get, post } from "./api.js";
import { h, clear, field } from "./dom.js";
import { t, zone, LANGUAGES } from "./i18n.js";
import { state, isAdmin } from "./state.js";

function contactName(id) {
  if (typeof id === "string" && id.startsWith("wearer:")) return t("policy.wearer_contact", { n: id.slice(7) });
  return state.contacts.get(id)?.name ?? id;
}

function policySummary(policy) {
  const steps = policy.steps.map((step, i) =>
    h("li", {}, t("policy.step", { n: i + 1, delay: step.delay_s ?? 0 }), " ", step.contacts.map(contactName).join(", ")));
  const extra = [];
  if (policy.repeat_after_s) extra.push(t("policy.repeat", { s: policy.repeat_after_s, rounds: policy.max_rounds ?? 1 }));
  if (policy.quiet_hours) extra.push(t("policy.quiet", { start: policy.quiet_hours.start, end: policy.quiet_hours.end }));
  return [h("ol", {}, steps), extra.length ? h("p", { class: "muted" }, extra.join(" · ")) : null];
}

function contactsSection(reload) {
  const section = h("section", { class: "panel" }, h("h2", {}, t("contacts")));
  const table = h("table", { class: "data" },
    h("thead", {}, h("tr", {}, [t("name"), t("language"), t("timezone"), t("channels")].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, [...state.contacts.values()].map((c) =>
      h("tr", {}, h("td", {}, c.name), h("td", {}, c.locale), h("td", {}, c.timezone), h("td", {}, h("ul", { class: "plain" }, c.urls.map((u) => h("li", {}, h("code", {}, u)))))))));
  section.append(state.contacts.size ? table : h("p", { class: "muted" }, t("none_yet")));
  if (!isAdmin()) return section;
  const name = h("input", { type: "text", required: true, maxlength: 200 });
  const locale = h("select", {}, LANGUAGES.map(([code, label]) => h("option", { value: code }, label)));
  locale.value = state.org?.locale || "fr";
  const timezone = h("input", { type: "text", required: true, value: state.org?.timezone || zone() });
  const urls = h("textarea", { rows: 3, required: true, placeholder: "mailto://user:pass@example.org?to=nurse@example.org" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "settings-form" }, h("h3", {}, t("contact.add")),
    field(t("name"), name), field(t("language"), locale), field(t("timezone"), timezone),
    field(t("channels"), urls, t("contact.urls_hint")), error, h("p", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, t("add"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await post("/api/v1/contacts", { name: name.value.trim(), locale: locale.value, timezone: timezone.value.trim(),
        urls: urls.value.split("\n").map((u) => u.trim()).filter(Boolean) });
      await reload();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  section.append(form);
  return section;
}

function contactPicker(label) {
  const select = h("select", { multiple: true, size: Math.min(6, Math.max(2, state.contacts.size)) },
    [...state.contacts.values()].map((c) => h("option", { value: c.id }, c.name)));
  return [field(label, select, t("policy.pick_hint")), () => [...select.selectedOptions].map((o) => o.value)];
}

function policiesSection(policies, templates, reload) {
  const section = h("section", { class: "panel" }, h("h2", {}, t("policies")));
  const list = h("ul", { class: "policies" }, policies.map((p) =>
    h("li", {}, h("h3", {}, p.name, p.is_default ? h("span", { class: "badge" }, t("policy.default")) : null), policySummary(p.policy))));
  section.append(policies.length ? list : h("p", { class: "muted" }, t("none_yet")));
  if (!isAdmin()) return section;

  const template = h("select", {}, templates.map((tp) => h("option", { value: tp.name }, `${tp.name}${tp.recommended ? ` (${t("policy.recommended")})` : ""}`)));
  const summary = h("p", { class: "muted" });
  const groups = h("div");
  const name = h("input", { type: "text", required: true, maxlength: 200 });
  const isDefault = h("input", { type: "checkbox" });
  const gap = h("input", { type: "number", min: 10, max: 3600, value: 60 });
  const error = h("p", { class: "error", role: "alert" });
  let pickers = {};
  const showTemplate = () => {
    const chosen = templates.find((tp) => tp.name === template.value);
    summary.textContent = chosen?.summary ?? "";
    pickers = {};
    clear(groups);
    for (const group of ["emergency", "staff", "night_nurse"]) {
      const needed = chosen?.needs.includes(group);
      const [control, value] = contactPicker(t(`policy.group.${group}`) + (needed ? ` (${t("required")})` : ""));
      pickers[group] = value;
      groups.append(control);
    }
  };
  template.addEventListener("change", showTemplate);
  if (templates.length) {
    template.value = (templates.find((tp) => tp.recommended) || templates[0]).name;
    showTemplate();
  }
  const form = h("form", { class: "settings-form" }, h("h3", {}, t("policy.from_template")),
    field(t("policy.template"), template), summary, field(t("name"), name),
    h("div", { class: "field checkbox" }, isDefault, h("label", { for: (isDefault.id = "policy-default") }, t("policy.make_default"))),
    groups, field(t("policy.gap"), gap), error,
    h("p", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, t("add"))));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = { template: template.value, name: name.value.trim(), is_default: isDefault.checked, attempt_gap_s: Number(gap.value) };
    for (const [group, value] of Object.entries(pickers)) if (value().length) body[group] = value();
    try {
      await post("/api/v1/escalation-policies/from-template", body);
      await reload();
    } catch (e) {
      error.textContent = e.message;
    }
  });

  const customName = h("input", { type: "text", required: true, maxlength: 200 });
  const customDefault = h("input", { type: "checkbox", id: "custom-default" });
  const customJson = h("textarea", { rows: 8, class: "code", spellcheck: "false" });
  customJson.value = JSON.stringify({ steps: [{ contacts: [...state.contacts.keys()].slice(0, 1), delay_s: 0 }], repeat_after_s: 600, max_rounds: 3 }, null, 2);
  const customError = h("p", { class: "error", role: "alert" });
  const custom = h("form", { class: "settings-form" }, h("h3", {}, t("policy.custom")),
    field(t("name"), customName), h("div", { class: "field checkbox" }, customDefault, h("label", { for: "custom-default" }, t("policy.make_default"))),
    field(t("policy.document"), customJson, t("policy.document_hint")), customError,
    h("p", { class: "buttons" }, h("button", { type: "submit" }, t("add"))));
  custom.addEventListener("submit", async (event) => {
    event.preventDefault();
    customError.textContent = "";
    let policy;
    try {
      policy = JSON.parse(customJson.value);
    } catch (e) {
      customError.textContent = e.message;
      return;
    }
    try {
      await post("/api/v1/escalation-policies", { name: customName.value.trim(), is_default: customDefault.checked, policy });
      await reload();
    } catch (e) {
      customError.textContent = e.message;
    }
  });
  section.append(form, custom);
  return section;
}

export async function loadContacts() {
  const contacts = await all("/api/v1/contacts", {}, 1000);
  state.contacts = new Map(contacts.map((c) => [c.id, c]));
}

export function renderSettings(main) {
  const page = h("div", { class: "settings-page" }, h("h1", {}, t("settings")), h("p", {}, t("loading")));
  main.append(page);
  let alive = true;
  const reload = async () => {
    try {
      const [, policies, templates] = await Promise.all([
        loadContacts(), all("/api/v1/escalation-policies", {}, 1000), get("/api/v1/escalation-policies/templates"),
      ]);
      if (!alive) return;
      clear(page).append(h("h1", {}, t("settings")), contactsSection(reload), policiesSection(policies, templates, reload));
    } catch (e) {
      clear(page).append(h("h1", {}, t("settings")), h("p", { class: "error" }, e.message));
    }
  };
  reload();
  return () => {
    alive = false;
  };
}
