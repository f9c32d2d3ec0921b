// WGS-84 (what devices report and the API stores) and GCJ-02 (the datum of Chinese basemaps, Amap/Gaode
// style), converted by the gcoord library. The map shows positions in the datum of its basemap: WGS-84
// for the offline basemap and ordinary tile servers, GCJ-02 for a Chinese organisation's GCJ-02 tiles.
import gcoord from "gcoord";

export function wgs84ToGcj02(lon, lat) {
  return gcoord.transform([lon, lat], gcoord.WGS84, gcoord.GCJ02);
}

export function gcj02ToWgs84(lon, lat) {
  return gcoord.transform([lon, lat], gcoord.GCJ02, gcoord.WGS84);
}

let datum = "wgs84";

export function setDatum(value) {
  datum = value === "gcj02" ? "gcj02" : "wgs84";
}

export function mapDatum() {
  return datum;
}

// A WGS-84 position as [lat, lng] on the map.
export function toMap(lat, lon) {
  if (datum !== "gcj02") return [lat, lon];
  const [x, y] = wgs84ToGcj02(lon, lat);
  return [y, x];
}

// A point of the map back to WGS-84 [lat, lon].
export function fromMap(lat, lng) {
  if (datum !== "gcj02") return [lat, lng];
  const [x, y] = gcj02ToWgs84(lng, lat);
  return [y, x];
}

function mapPositions(coordinates, convert) {
  if (typeof coordinates[0] === "number") return convert(coordinates);
  return coordinates.map((c) => mapPositions(c, convert));
}

// A GeoJSON geometry (WGS-84) in the map's datum, and back.
export function geometryToMap(geometry) {
  if (datum !== "gcj02") return geometry;
  return { ...geometry, coordinates: mapPositions(geometry.coordinates, ([x, y]) => wgs84ToGcj02(x, y)) };
}

export function geometryFromMap(geometry) {
  if (datum !== "gcj02") return geometry;
  return { ...geometry, coordinates: mapPositions(geometry.coordinates, ([x, y]) => gcj02ToWgs84(x, y)) };
}
