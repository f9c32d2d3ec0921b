// The map's background: the configured tile server, or, with none (no network on these machines), the
// bundled offline basemap: Natural Earth land and borders (world-atlas) and an OpenStreetMap extract of
// the streets, parks and water of central Marseille and Aix (© OpenStreetMap contributors, ODbL).
import L from "./leaflet.js";
import { feature, mesh } from "topojson-client";
import { config } from "./config.js";

const OSM = '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors';
const NATURAL_EARTH = '<a href="https://www.naturalearthdata.com/">Natural Earth</a>';
const LAND = "#f2efe9";
const SEA = "#aad3df";
// Street layers: the zoom from which each shows, its casing and fill.
const STREETS = [
  ["minor", 14, "#cfc8bb", "#ffffff", 2.5],
  ["tertiary", 12, "#c7bfa9", "#fffbe0", 3.5],
  ["major", 10, "#b9925a", "#f7cf86", 4.5],
];

let offlineData = null;

function fetchJson(url) {
  return fetch(url, { credentials: "same-origin" }).then((response) => {
    if (!response.ok) throw new Error(`${url}: ${response.status}`);
    return response.json();
  });
}

function decodeLine(flat, scale) {
  const points = [];
  let x = 0;
  let y = 0;
  for (let i = 0; i < flat.length; i += 2) {
    x += flat[i];
    y += flat[i + 1];
    points.push([x / scale, y / scale]);
  }
  return points;
}

// The offline data, fetched once per page and turned into GeoJSON.
export function offlineBasemap() {
  if (!offlineData) {
    offlineData = Promise.all([fetchJson(config.assets.countries), fetchJson(config.assets.streets)]).then(
      ([topology, extract]) => {
        const scale = extract.scale;
        const lines = (name) => ({
          type: "MultiLineString",
          coordinates: extract.layers[name].map((flat) => decodeLine(flat, scale)),
        });
        const polygons = (name) => ({
          type: "MultiPolygon",
          coordinates: extract.layers[name].map((rings) => rings.map((flat) => decodeLine(flat, scale))),
        });
        const cityLand = {
          type: "MultiPolygon",
          coordinates: extract.cities.map(({ bbox: [w, s, e, n] }) => [[[w, s], [e, s], [e, n], [w, n], [w, s]]]),
        };
        return {
          land: feature(topology, topology.objects.land),
          borders: mesh(topology, topology.objects.countries, (a, b) => a !== b),
          cityLand,
          water: polygons("water"),
          green: polygons("green"),
          streets: Object.fromEntries(STREETS.map(([name]) => [name, lines(name)])),
        };
      },
    );
  }
  return offlineData;
}

function geo(data, style, renderer) {
  // pmIgnore, snapIgnore: Leaflet-Geoman's edit and removal tools must never touch the basemap.
  return L.geoJSON(data, { style: () => ({ ...style, renderer }), interactive: false, pane: "basemap", pmIgnore: true, snapIgnore: true });
}

// The tile server for this organisation (region cn may have its own), or null for the offline basemap.
export function tileServer(region) {
  return (region === "cn" && config.tiles_cn) || config.tiles || null;
}

// Adds the background to a map; answers the datum positions must be drawn in ("wgs84" or "gcj02").
export function addBasemap(map, region) {
  map.createPane("basemap");
  map.getPane("basemap").style.zIndex = 150;
  map.getPane("basemap").style.pointerEvents = "none";
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  const tiles = tileServer(region);
  if (tiles) {
    L.tileLayer(tiles.url, { attribution: tiles.attribution, maxZoom: 19, pane: "basemap" }).addTo(map);
    return tiles.datum;
  }
  map.getContainer().classList.add("offline-basemap");
  map.attributionControl.addAttribution(`${NATURAL_EARTH} | ${OSM}`);
  const renderer = L.canvas({ padding: 0.3, pane: "basemap" });
  offlineBasemap()
    .then((data) => new Promise((resolve) => map.whenReady(() => resolve(data))))
    .then((data) => {
      geo(data.land, { stroke: false, fillColor: LAND, fillOpacity: 1 }, renderer).addTo(map);
      geo(data.cityLand, { stroke: false, fillColor: LAND, fillOpacity: 1 }, renderer).addTo(map);
      geo(data.water, { stroke: false, fillColor: SEA, fillOpacity: 1 }, renderer).addTo(map);
      geo(data.green, { stroke: false, fillColor: "#cdebb0", fillOpacity: 1 }, renderer).addTo(map);
      geo(data.borders, { color: "#8d8579", weight: 1, dashArray: "4 3", fill: false }, renderer).addTo(map);
      const streetLayers = STREETS.map(([name, minZoom, casing, fill, width]) => ({
        minZoom,
        layers: [
          geo(data.streets[name], { color: casing, weight: width + 1.5, fill: false, lineCap: "round" }, renderer),
          geo(data.streets[name], { color: fill, weight: width, fill: false, lineCap: "round" }, renderer),
        ],
      }));
      // Casings of every layer first, then fills, so that crossings look joined.
      const show = () => {
        const zoom = map.getZoom();
        for (const pass of [0, 1]) {
          for (const { minZoom, layers } of streetLayers) {
            const layer = layers[pass];
            if (zoom >= minZoom && !map.hasLayer(layer)) layer.addTo(map);
            if (zoom < minZoom && map.hasLayer(layer)) map.removeLayer(layer);
          }
        }
      };
      const reorder = () => {
        for (const pass of [0, 1]) for (const { layers } of streetLayers) if (map.hasLayer(layers[pass])) layers[pass].bringToFront();
      };
      show();
      reorder();
      map.on("zoomend", () => {
        show();
        reorder();
      });
      map.fire("basemapready");
      map.getContainer().dataset.basemap = "ready";
    })
    .catch((error) => {
      console.error("offline basemap", error);
      map.getContainer().dataset.basemap = "failed";
    });
  return "wgs84";
}
