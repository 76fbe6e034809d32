"""The site's two static files: the style sheet and the table-sorting script (vanilla JS, no
network). Pages load them from the site itself (``style-src 'self'; script-src 'self'``), so no
inline style or script is needed anywhere."""

from __future__ import annotations

#: Content-Security-Policy of every page (also sent as a header by ``dcreg serve``).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'"
)

STYLE_CSS = """\
:root { --fg:#1d2330; --muted:#5b6577; --line:#dde2ea; --accent:#2756c5; --bg:#f6f7f9; --card:#fff; }
* { box-sizing:border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
       color:var(--fg); background:var(--bg); }
header.top { background:#1d2330; color:#fff; padding:.7rem 1.5rem; display:flex; gap:1rem; align-items:baseline; }
header.top a { color:#fff; text-decoration:none; font-weight:600; }
header.top span { color:#aab3c5; font-size:.9rem; }
main { max-width:1200px; margin:1.5rem auto; padding:0 1.5rem; }
h1 { font-size:1.5rem; margin:.2rem 0 1rem; word-break:break-word; }
h2 { font-size:1.2rem; margin:1.8rem 0 .6rem; }
h3 { font-size:1rem; margin:1.2rem 0 .4rem; word-break:break-word; }
a { color:var(--accent); }
section.box { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:1rem 1.2rem; margin-bottom:1.2rem; overflow-x:auto; }
table { border-collapse:collapse; width:100%; font-size:.9rem; }
th, td { text-align:left; padding:.35rem .55rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--muted); font-weight:600; background:#fafbfc; white-space:nowrap; }
table.sortable th { cursor:pointer; user-select:none; }
table.sortable th:focus { outline:2px solid var(--accent); outline-offset:-2px; }
table.sortable th[aria-sort="ascending"]::after { content:" \\25B2"; font-size:.7em; }
table.sortable th[aria-sort="descending"]::after { content:" \\25BC"; font-size:.7em; }
td.num { font-variant-numeric:tabular-nums; white-space:nowrap; }
td code { word-break:normal; white-space:nowrap; }
tr:hover td { background:#fafcff; }
code, .mono { font-family:ui-monospace,"DejaVu Sans Mono",monospace; font-size:.86em; word-break:break-all; }
.muted { color:var(--muted); }
.note { background:#fff8e6; border:1px solid #f0d58c; padding:.5rem .8rem; border-radius:6px; }
.plots { display:flex; flex-wrap:wrap; gap:1rem; }
.plots figure { margin:0; }
.plots figcaption { font-size:.85rem; color:var(--muted); max-width:640px; }
svg.plot { background:#fff; border:1px solid var(--line); border-radius:6px; max-width:100%; height:auto; }
.samples { display:flex; flex-wrap:wrap; gap:1rem; }
.samples figure { margin:0; max-width:360px; }
.samples img, .grid img { max-width:100%; height:auto; image-rendering:pixelated; border:1px solid var(--line); background:#fff; }
table.paper { width:auto; }
table.paper tbody th { color:inherit; }
.warn { color:#9a5b00; }
#plot { max-width:100%; height:auto; border:1px solid var(--line); background:#fff; }
.card-body { overflow-x:auto; }
.card-body pre { background:#f3f4f7; padding:.7rem; border-radius:6px; overflow-x:auto; }
.card-body table { width:auto; }
.facts { display:grid; grid-template-columns:max-content 1fr; gap:.2rem 1rem; font-size:.92rem; }
.facts dt { color:var(--muted); }
.facts dd { margin:0; word-break:break-word; }
"""

#: Click (or Enter/Space on) a column header of a ``table.sortable`` to sort its rows by that
#: column: numbers by value (a cell's ``data-sort`` when it has one), text alphabetically; cells
#: without a value sort last either way; clicking again reverses.
SORT_JS = """\
"use strict";
(function () {
  function value(cell) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (raw === "" || raw === "-" || raw === "\\u2013") { return null; }
    var n = Number(raw);
    return isNaN(n) ? raw.toLowerCase() : n;
  }
  function compare(a, b) {
    if (typeof a === "number" && typeof b === "number") { return a - b; }
    if (typeof a === "number") { return -1; }
    if (typeof b === "number") { return 1; }
    return a < b ? -1 : (a > b ? 1 : 0);
  }
  function sortBy(table, th, index) {
    var asc = th.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = value(r1.cells[index]), b = value(r2.cells[index]);
      if (a === null && b === null) { return 0; }
      if (a === null) { return 1; }
      if (b === null) { return -1; }
      return asc ? compare(a, b) : compare(b, a);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    if (!table.tHead || !table.tBodies.length) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      th.tabIndex = 0;
      th.title = "sort by this column";
      th.addEventListener("click", function () { sortBy(table, th, index); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th, index); }
      });
    });
  });
}());
"""

FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#1d2330"/>'
    '<rect x="3" y="8" width="2.5" height="5" fill="#fff"/><rect x="6.75" y="4" width="2.5" height="9" fill="#fff"/>'
    '<rect x="10.5" y="6" width="2.5" height="7" fill="#fff"/></svg>\n'
)
