const topo = require('world-atlas/countries-50m.json');
const tc = require('topojson-client');
const fc = tc.feature(topo, topo.objects.countries);
const syr = fc.features.find(f => f.id === '760');
console.log(JSON.stringify({type:'Feature', id:'760', properties:{name: syr.properties.name, source:'Natural Earth 1:50m via npm world-atlas@2 (public domain)'}, geometry: syr.geometry}));
