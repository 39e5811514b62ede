// usage: node prof.tmp.js N  -> aggregates self time by source over N runs
const { execFileSync } = require('child_process');
const fs = require('fs'), path = require('path');
const { SourceMapConsumer } = require('source-map');
const N = Number(process.argv[2] || 8);
const dir = '/tmp/prof';
const sample = JSON.parse(fs.readFileSync('/work/main/local.settings.sample.json','utf8')).Values;
const env = { KT_STUB: process.env.KT_STUB||'', APP: process.env.APP||'', PATH: process.env.PATH, ...Object.fromEntries(Object.entries(sample).filter(([k])=>!/_FILE$/.test(k))) };
const core = `const core=require('/work/main/dist/local/host/coreModule.js');core.installCoreModule();core.activateRegistry(new core.CoreRegistry(()=>{}));`;
(async () => {
  for (const f of fs.readdirSync(dir)) fs.unlinkSync(path.join(dir,f));
  for (let i=0;i<N;i++) execFileSync(process.execPath, ['--cpu-prof','--cpu-prof-interval','50','--cpu-prof-dir',dir,'-e', core + `require(process.env.APP||'/work/main/dist/app/main.js')`], { env, cwd:'/work/main' });
  const map = await new SourceMapConsumer(JSON.parse(fs.readFileSync((process.env.MAP||'/work/main/dist/app/app.js.map'),'utf8')));
  const by = {}; let total = 0;
  for (const f of fs.readdirSync(dir)) {
    const p = JSON.parse(fs.readFileSync(path.join(dir,f)));
    const self = {}; const dt = {};
    for (let i=0;i<p.samples.length;i++) { self[p.samples[i]] = (self[p.samples[i]]||0) + (p.timeDeltas[i]||0); }
    for (const n of p.nodes) {
      const t = (self[n.id]||0)/1000; if (!t) continue; total += t;
      const cf = n.callFrame; let key;
      if (cf.url.endsWith('/app.js')) {
        const o = map.originalPositionFor({ line: cf.lineNumber+1, column: cf.columnNumber });
        key = (o.source||'app.js?').replace(/.*node_modules\//,'nm/').replace(/^\.\.\/\.\.\//,'');
        if (process.env.FN) key += ':' + (o.name||cf.functionName);
      } else if (cf.url) key = cf.url.replace(/.*node_modules\//,'nm/').replace('/work/main/','');
      else key = '(' + cf.functionName + ')';
      by[key] = (by[key]||0) + t;
    }
  }
  const rows = Object.entries(by).sort((a,b)=>b[1]-a[1]).slice(0, Number(process.env.TOP||45));
  console.log('total ms per run', (total/N).toFixed(1));
  for (const [k,v] of rows) console.log((v/N).toFixed(2).padStart(7), k);
})();
