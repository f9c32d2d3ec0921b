// Leaflet as a global (window.L), which the Leaflet-Geoman plugin extends, then the plugin itself.
import L from "leaflet";
import "@geoman-io/leaflet-geoman-free";

export default L;
