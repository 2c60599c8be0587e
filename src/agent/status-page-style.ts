/**
 * The status page's inline stylesheet: no external assets, light and dark
 * by prefers-color-scheme, and nothing wider than the window from 320 px up
 * (long target names wrap anywhere, rows stack below 760 px).
 */
export const STATUS_PAGE_STYLE = `
:root{color-scheme:light dark;
--bg:#f4f5f7;--card:#fff;--fg:#1c2230;--muted:#5b6474;--line:#dde1e8;
--ok:#137a3a;--ok-bg:#e5f4ea;--fail:#b3261e;--fail-bg:#fce9e7;--warn:#8a5800;--warn-bg:#fff3d1;
--skip:#8d95a3;--skip-bg:#eef0f3;--on-fail:#fff}
@media (prefers-color-scheme:dark){:root{
--bg:#0e1116;--card:#161b22;--fg:#e6e9ef;--muted:#9aa4b4;--line:#2b323d;
--ok:#56d08a;--ok-bg:#10301f;--fail:#ff8a80;--fail-bg:#3b1715;--warn:#f0c050;--warn-bg:#33290c;
--skip:#6b7482;--skip-bg:#1f252e;--on-fail:#2b0503}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1120px;margin:0 auto;padding:16px}
a{color:inherit}
code,.mono{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;font-size:.92em}
code{overflow-wrap:anywhere}
h2{font-size:1rem;margin:22px 0 8px;color:var(--muted);text-transform:uppercase;letter-spacing:.06em}
time{font-variant-numeric:tabular-nums}
.muted{color:var(--muted)}
.banner{border-radius:12px;padding:16px 20px;background:var(--card);border:1px solid var(--line);border-left:8px solid var(--skip)}
.banner.failing{border-left-color:var(--fail);background:var(--fail-bg)}
.banner.ok{border-left-color:var(--ok)}
.banner.degraded{border-left-color:var(--warn)}
.headline{font-size:1.5rem;font-weight:650;margin:0 0 6px;overflow-wrap:anywhere}
.banner.failing .headline{color:var(--fail)}
.banner.ok .headline{color:var(--ok)}
.counts{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}
.pill{display:inline-block;border-radius:999px;padding:1px 10px;font-size:.85rem;font-weight:600;white-space:nowrap;background:var(--skip-bg);color:var(--muted)}
.pill.failing{background:var(--fail);color:var(--on-fail)}
.pill.ok{background:var(--ok-bg);color:var(--ok)}
.pill.degraded{background:var(--warn-bg);color:var(--warn)}
.where{display:flex;flex-wrap:wrap;gap:4px 18px;margin:0;font-size:.92rem}
.where div{min-width:0;overflow-wrap:anywhere}
.where dt{display:inline;color:var(--muted)}
.where dd{display:inline;margin:0 0 0 4px;font-weight:600}
.meta{font-size:.85rem;color:var(--muted);margin-top:6px}
.files{border-radius:10px;padding:10px 16px;margin-top:12px;background:var(--warn-bg);color:var(--fg);border:1px solid var(--warn)}
.files p{margin:0;font-weight:600;color:var(--warn)}
.files ul{margin:6px 0 0;padding-left:20px;overflow-wrap:anywhere}
.reg{background:var(--card);border:1px solid var(--line);border-radius:12px;margin:12px 0}
.reg.failing{border-color:var(--fail)}
.reg.degraded{border-color:var(--warn)}
.reg>.head{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 12px;padding:10px 16px;border-bottom:1px solid var(--line)}
details.reg>summary{cursor:pointer;list-style:none}
details.reg>summary::-webkit-details-marker{display:none}
details.reg>summary::after{content:"show targets ▸";margin-left:auto;font-size:.8rem;color:var(--muted)}
details.reg[open]>summary::after{content:"hide ▾"}
details.reg:not([open])>summary{border-bottom:0}
.reg.failing>.head{background:var(--fail-bg);border-radius:11px 11px 0 0}
.reg>.head h3{margin:0;font-size:1.08rem;overflow-wrap:anywhere;min-width:0}
.reg>.head .tally{font-size:.85rem;color:var(--muted)}
.problem{padding:10px 16px;border-bottom:1px solid var(--line)}
.problem .what{margin:0;font-weight:600}
.problem .what .why{color:var(--fail)}
.problem .fix{margin:6px 0 0;padding:8px 12px;border-radius:8px;background:var(--bg);border-left:4px solid var(--fail);max-width:72ch}
.problem .fix b{color:var(--muted);font-weight:600;margin-right:4px}
.targets{list-style:none;margin:0;padding:0}
.t{display:grid;grid-template-columns:minmax(0,1fr) auto 9.5em;gap:4px 14px;align-items:center;padding:7px 16px;border-top:1px solid var(--line)}
.t:first-child{border-top:0}
.t .name{min-width:0;display:flex;gap:8px;align-items:baseline}
.t .name code{background:none}
.t .mark{font-weight:700;width:1em;flex:none;text-align:center}
.t.failing .mark{color:var(--fail)}.t.ok .mark{color:var(--ok)}.t.degraded .mark{color:var(--warn)}.t.pending .mark{color:var(--skip)}
.t .sub{grid-column:1/-1;font-size:.88rem;color:var(--muted);padding-left:24px;overflow-wrap:anywhere;margin-top:-2px}
.t.failing .sub .why{color:var(--fail);font-weight:600}
.t .when{font-size:.82rem;color:var(--muted);text-align:right;white-space:nowrap}
.chips{display:flex;flex-wrap:wrap;gap:3px}
.chip{display:inline-block;font-size:.75rem;line-height:1.5;padding:0 6px;border-radius:5px;white-space:nowrap;background:var(--skip-bg);color:var(--skip)}
.chip.ok{background:var(--ok-bg);color:var(--ok)}
.chip.failing{background:var(--fail);color:var(--on-fail)}
.chip.degraded{background:var(--warn-bg);color:var(--warn)}
.empty{background:var(--card);border:1px dashed var(--line);border-radius:12px;padding:16px;color:var(--muted)}
.changes{list-style:none;margin:0;padding:0;background:var(--card);border:1px solid var(--line);border-radius:12px}
.changes li{display:grid;grid-template-columns:6.5em minmax(0,1fr);gap:2px 12px;padding:7px 16px;border-top:1px solid var(--line)}
.changes li:first-child{border-top:0}
.changes .what{min-width:0;overflow-wrap:anywhere}
.v{font-weight:600;white-space:nowrap}
.v.failing{color:var(--fail)}.v.ok{color:var(--ok)}.v.degraded{color:var(--warn)}.v.none{color:var(--muted);font-weight:400}
.arrow{color:var(--muted)}
@media (max-width:760px){
main{padding:10px}
.banner{padding:12px 14px}
.headline{font-size:1.25rem}
.t{grid-template-columns:minmax(0,1fr);padding:8px 12px}
.t .chips,.t .when{padding-left:24px;text-align:left}
.t .sub{padding-left:24px}
.reg>.head,.problem{padding:8px 12px}
.changes li{grid-template-columns:minmax(0,1fr);padding:8px 12px}
.changes .what code{display:block}
}
`;
