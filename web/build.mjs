// Bundles the dashboard into the Python package (src/geosentinel/dashboard/static/), which is committed:
// the service serves these files and needs no node at run time. Run through `make web` (npm ci + this).
//
//   app.js           every script (Leaflet, Leaflet-Geoman, gcoord, topojson-client and ours), minified
//   app.css          Leaflet's, Leaflet-Geoman's and our styles
//   app.js.LEGAL.txt the licence comments of the bundled libraries
//   basemap/countries-50m.json  Natural Earth 1:50m countries (world-atlas, public domain)
//   basemap/streets.json        not built here: scripts/build_dashboard_basemap.py writes it (OSM, ODbL)
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "geosentinel", "dashboard", "static");
mkdirSync(join(out, "basemap"), { recursive: true });
for (const stale of ["app.js", "app.css", "app.js.LEGAL.txt", "app.css.LEGAL.txt"]) {
  rmSync(join(out, stale), { force: true });
}

await esbuild.build({
  entryPoints: { app: join(here, "src", "main.js") },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  platform: "browser",
  legalComments: "linked",
  outdir: out,
  logLevel: "warning",
});
await esbuild.build({
  entryPoints: { app: join(here, "src", "style.css") },
  bundle: true,
  minify: true,
  loader: { ".png": "dataurl", ".svg": "dataurl" },
  legalComments: "none",
  outdir: out,
  logLevel: "warning",
});

const atlas = join(here, "node_modules", "world-atlas");
copyFileSync(join(atlas, "countries-50m.json"), join(out, "basemap", "countries-50m.json"));
// Leaflet's licence (BSD-2-Clause) is not in a comment of its code: ship it beside the bundle.
const notices = ["leaflet/LICENSE", "@geoman-io/leaflet-geoman-free/LICENSE", "gcoord/LICENSE",
  "topojson-client/LICENSE", "world-atlas/LICENSE"];
writeFileSync(join(out, "THIRD-PARTY-LICENSES.txt"), notices.map((name) =>
  `== ${name.split("/LICENSE")[0]} ==\n${readFileSync(join(here, "node_modules", name), "utf8").trim()}\n`,
).join("\n"));

for (const name of ["app.js", "app.css", "basemap/countries-50m.json", "basemap/streets.json"]) {
  try {
    console.log(`${name.padEnd(28)} ${(statSync(join(out, name)).size / 1000).toFixed(0).padStart(5)} kB`);
  } catch {
    console.log(`${name.padEnd(28)} missing`);
  }
}
