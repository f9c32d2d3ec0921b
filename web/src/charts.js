// Small line charts drawn as inline SVG (no charting library): one measure over a day, with hour ticks in
// the organisation's time zone, a text summary for screen readers and a table of the values on demand.
import { h } from "./dom.js";
import { t, formatHour, formatNumber, formatTime } from "./i18n.js";

const NS = "http://www.w3.org/2000/svg";
const W = 380;
const H = 160;
const PAD = { left: 42, right: 14, top: 10, bottom: 24 };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function niceStep(span) {
  const raw = span / 3;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((step) => step >= raw);
}

// Axis bounds on round numbers, including floor and ceiling when given (0-100 % for a battery).
function niceRange(values, floor, ceiling) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (floor !== undefined) lo = Math.min(lo, floor);
  if (ceiling !== undefined) hi = Math.max(hi, ceiling);
  if (hi - lo < 1e-9) {
    lo -= 1;
    hi += 1;
  }
  const step = niceStep(hi - lo);
  return [Math.floor(lo / step) * step, Math.ceil(hi / step) * step, step];
}

// points: [[Date, number], ...] oldest first; domain: [Date, Date] (the day).
export function lineChart({ title, unit, points, domain, color, floor, ceiling, digits = 0 }) {
  const figure = h("figure", { class: "chart" });
  const caption = h("figcaption", {}, h("strong", {}, title));
  figure.append(caption);
  if (!points.length) {
    figure.append(h("p", { class: "muted" }, t("no_data")));
    return figure;
  }
  const values = points.map(([, v]) => v);
  const [lo, hi, step] = niceRange(values, floor, ceiling);
  const [t0, t1] = domain.map((d) => d.getTime());
  const x = (time) => PAD.left + ((time.getTime() - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - ((v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  const last = values[values.length - 1];
  const fmt = (v) => `${formatNumber(v, digits)}${unit ? ` ${unit}` : ""}`;
  const summary = t("chart_summary", { title, last: fmt(last), min: fmt(Math.min(...values)), max: fmt(Math.max(...values)), count: values.length });
  const plot = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary, class: "chart-svg" });
  for (let v = lo; v <= hi + step / 2; v += step) {
    plot.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
    plot.append(svg("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, formatNumber(v, digits)));
  }
  for (let hour = 0; hour <= 24; hour += 6) {
    const time = new Date(t0 + ((t1 - t0) * hour) / 24);
    plot.append(svg("line", { x1: x(time), x2: x(time), y1: PAD.top, y2: H - PAD.bottom, class: "grid" }));
    plot.append(svg("text", { x: x(time), y: H - 8, "text-anchor": hour === 0 ? "start" : hour === 24 ? "end" : "middle", class: "tick" }, formatHour(time)));
  }
  const path = points.map(([time, v], i) => `${i ? "L" : "M"}${x(time).toFixed(1)},${y(v).toFixed(1)}`).join("");
  plot.append(svg("path", { d: path, fill: "none", stroke: color, "stroke-width": 2 }));
  const [lastTime] = points[points.length - 1];
  plot.append(svg("circle", { cx: x(lastTime), cy: y(last), r: 3.5, fill: color }));
  caption.append(" ", h("span", { class: "muted" }, summary));
  const table = h("table", {},
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("time")), h("th", { scope: "col" }, title))),
    h("tbody", {}, points.slice(-200).map(([time, v]) => h("tr", {}, h("td", {}, formatTime(time.toISOString(), { seconds: true })), h("td", {}, fmt(v))))));
  figure.append(h("div", { class: "chart-box" }, plot), h("details", { class: "chart-table" }, h("summary", {}, t("show_values")), table));
  return figure;
}
