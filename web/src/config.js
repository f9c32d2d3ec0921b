// What the service passes to the page (tile servers, asset URLs): the JSON of <script id="gs-config">.
const element = typeof document !== "undefined" ? document.getElementById("gs-config") : null;
export const config = element ? JSON.parse(element.textContent) : { tiles: null, tiles_cn: null, assets: {} };
