const fs=require('fs');const {SourceMapConsumer}=require('source-map');
(async()=>{
const map = await new SourceMapConsumer(JSON.parse(fs.readFileSync('/work/main/dist/app/app.js.map','utf8')));
const f=fs.readdirSync('/tmp/prof')[0]; const p=JSON.parse(fs.readFileSync('/tmp/prof/'+f));
const by={}; let tot=0;
function walk(n){ const s=n.selfSize; if(s){ tot+=s; const cf=n.callFrame; let k;
 if(cf.url.endsWith('/app.js')){const o=map.originalPositionFor({line:cf.lineNumber+1,column:cf.columnNumber}); k=(o.source||'app?').replace(/.*node_modules\//,'nm/').replace(/^\.\.\/\.\.\//,'')+(process.env.FN?':'+(o.name||cf.functionName)+':'+o.line:'');}
 else k=(cf.url||'(native)').replace(/.*node_modules\//,'nm/')+(process.env.FN?':'+cf.functionName:''); by[k]=(by[k]||0)+s;}
 for(const c of n.children||[]) walk(c);}
walk(p.head);
console.log('total kB', (tot/1024).toFixed(0));
for(const [k,v] of Object.entries(by).sort((a,b)=>b[1]-a[1]).slice(0,30)) console.log((v/1024).toFixed(0).padStart(6),k);
})();
