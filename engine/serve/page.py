"""The dashboard page (HTML + a little JavaScript: fetch the board, then apply SSE updates)."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tidegate · live devices</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5rem; color: #123; }
  h1 { font-size: 1.2rem; } h2 { font-size: 1rem; margin-top: 1.5rem; }
  table { border-collapse: collapse; } td, th { padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  .status { color: #666; } .anomaly { color: #a00; }
</style>
</head>
<body>
<h1>tidegate · live devices</h1>
<p class="status">updates: <span id="updates">0</span> · devices: <span id="device-count">0</span> ·
  feed: <span id="feed">connecting</span></p>
<h2>Latest window per device</h2>
<table id="devices"><thead><tr><th>device</th><th>window end (UTC)</th><th>readings</th>
  <th>temp mean</th><th>temp min</th><th>temp max</th><th>temp std</th><th>humidity mean</th>
  <th>pressure mean</th><th>vibration max</th></tr></thead><tbody></tbody></table>
<h2>Recent anomalies</h2>
<table id="anomalies"><thead><tr><th>device</th><th>time (UTC)</th><th>measurement</th><th>kind</th>
  <th>value</th><th>expected</th><th>score</th></tr></thead><tbody></tbody></table>
<script>
const devices = new Map();
const anomalies = [];
let updates = 0;
const fmt = (v) => (v === null || v === undefined) ? "" : (typeof v === "number" ? v.toFixed(2) : String(v));
const iso = (t) => typeof t === "number" ? new Date(t * 1000).toISOString().slice(0, 19) : String(t).slice(0, 19);
function stat(row, m, s) { return row[m] ? fmt(row[m][s]) : ""; }
function render() {
  document.getElementById("updates").textContent = updates;
  document.getElementById("device-count").textContent = devices.size;
  const body = document.querySelector("#devices tbody");
  body.replaceChildren(...[...devices.values()].sort((a, b) => a.device_id.localeCompare(b.device_id)).map((w) => {
    const tr = document.createElement("tr");
    tr.dataset.device = w.device_id;
    for (const v of [w.device_id, iso(w.window_end), w.count, stat(w, "temperature_c", "mean"),
      stat(w, "temperature_c", "min"), stat(w, "temperature_c", "max"), stat(w, "temperature_c", "std"),
      stat(w, "humidity_pct", "mean"), stat(w, "pressure_hpa", "mean"), stat(w, "vibration_g", "max")]) {
      const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
    }
    return tr;
  }));
  const abody = document.querySelector("#anomalies tbody");
  abody.replaceChildren(...anomalies.slice(-50).reverse().map((a) => {
    const tr = document.createElement("tr"); tr.className = "anomaly";
    for (const v of [a.device_id, iso(a.ts), a.measurement, a.kind, fmt(a.value), fmt(a.expected), fmt(a.score)]) {
      const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
    }
    return tr;
  }));
}
function apply(items) {
  for (const it of items) {
    if (it.kind === "window") devices.set(it.device_id, it);
    else if (it.kind === "anomaly") { anomalies.push(it); if (anomalies.length > 200) anomalies.shift(); }
  }
  updates += 1;
  render();
}
fetch("/dashboard/state").then((r) => r.json()).then((s) => {
  for (const w of s.devices) devices.set(w.device_id, w);
  for (const a of s.anomalies) anomalies.push(a);
  render();
  const es = new EventSource("/dashboard/events");
  es.addEventListener("hello", () => { document.getElementById("feed").textContent = "live"; });
  es.addEventListener("update", (e) => apply(JSON.parse(e.data)));
  es.onerror = () => { document.getElementById("feed").textContent = "reconnecting"; };
});
</script>
</body>
</html>
"""
