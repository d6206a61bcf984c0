// The offline basemap of the web page: Natural Earth 1:50m country boundaries (public domain, npm
// world-atlas@2) around the Middle East, as GeoJSON with coordinates rounded to 0.001 degree.
// Usage: npm install world-atlas@2 topojson-client@3 && node scripts/extract_basemap.js > src/deconflict/web/data/countries_50m.geojson
const topo = require('world-atlas/countries-50m.json');
const tc = require('topojson-client');
const BOX = [20, 20, 60, 46]; // min lon, min lat, max lon, max lat
const round = (x) => Math.round(x * 1000) / 1000;
function ringsOf(g) {
  return g.type === 'Polygon' ? [g.coordinates] : g.type === 'MultiPolygon' ? g.coordinates : [];
}
function inBox(poly) {
  return poly[0].some(([x, y]) => x >= BOX[0] && x <= BOX[2] && y >= BOX[1] && y <= BOX[3]);
}
const features = [];
for (const f of tc.feature(topo, topo.objects.countries).features) {
  if (!f.geometry) continue;
  const polys = ringsOf(f.geometry).filter(inBox);
  if (!polys.length) continue;
  const coordinates = polys.map((p) => p.map((ring) => ring.map(([x, y]) => [round(x), round(y)])));
  features.push({ type: 'Feature', id: f.id, properties: { name: f.properties.name },
    geometry: { type: 'MultiPolygon', coordinates } });
}
console.log(JSON.stringify({ type: 'FeatureCollection',
  properties: { source: 'Natural Earth 1:50m via npm world-atlas@2 (public domain)' }, features }));
