// Search detail: live progress without reloading, then the leaderboard and the Plotly charts.
(function () {
  "use strict";
  const progress = document.getElementById("progress");
  if (!progress) return;
  const charts = document.getElementById("charts");
  const board = document.getElementById("leaderboard");
  let finished = progress.dataset.finished === "1";
  let lastDone = -1;
  let polls = 0;
  const text = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };

  function render(p) {
    document.getElementById("progress-bar").style.width = p.percent + "%";
    text("p-done", p.done); text("p-percent", p.percent.toFixed(1)); text("p-failed", p.failed);
    text("p-elapsed", p.elapsed.toFixed(2));
    text("p-eta", p.eta === null ? "–" : Math.round(p.eta) + " s");
    text("p-cores", p.cores_used === null ? "–" : p.cores_used);
    text("p-best", p.best_score === null ? "–" : p.best_score.toFixed(4));
    const badge = document.getElementById("status-badge");
    badge.textContent = p.status; badge.className = "badge " + p.status;
    text("p-busy", p.busy.length
      ? "Busy: " + p.busy.map((b) => `${b.host} (unit ${b.unit}, runner pid ${b.runner_pid}, ${b.processes ?? "?"} processes, ${b.fits_run} fits)`).join("; ")
      : (p.hosts.length ? "Machines that ran fits: " + p.hosts.join(", ") : ""));
    const warnings = document.getElementById("s-warnings");
    if (warnings) warnings.replaceChildren(...p.warnings.map((w) => { const li = document.createElement("li"); li.textContent = w; return li; }));
    if (p.speedup !== null) text("s-speedup", p.speedup.toFixed(2) + "×");
    if (p.efficiency !== null) text("s-efficiency", Math.round(p.efficiency * 100) + "%");
    const error = document.getElementById("p-error");
    error.hidden = !p.error; error.textContent = p.error;
    document.getElementById("cancel-form").hidden = p.finished;
    document.querySelectorAll("a.export").forEach((a) => { a.hidden = p.status !== "done"; });
    if (p.best_params) {
      document.getElementById("best").hidden = false;
      text("best-params", JSON.stringify(p.best_params, null, 1));
    }
  }

  async function poll() {
    try {
      const response = await fetch(progress.dataset.url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const p = await response.json();
        render(p);
        if (p.finished && !finished) { finished = true; loadBoard(""); drawAll(); }
        else if (!p.finished && p.done !== lastDone && ++polls % 5 === 0) drawSpeedup();  // the timeline grows live
        if (!p.finished && p.done !== lastDone) { lastDone = p.done; const note = document.getElementById("board-count"); if (note) note.textContent = p.done; }
        finished = p.finished;
      }
    } finally {
      if (!finished) setTimeout(poll, 1000);
    }
  }

  async function loadBoard(query) {
    const response = await fetch(board.dataset.url + query);
    if (!response.ok) return;
    document.getElementById("leaderboard-body").innerHTML = await response.text();
  }
  board.addEventListener("click", (event) => {
    const link = event.target.closest("a");
    if (!link || !link.getAttribute("href").startsWith("?")) return;
    event.preventDefault();
    loadBoard(link.getAttribute("href"));
  });

  const metric = () => { const m = document.getElementById("chart-metric"); return m ? m.value : ""; };
  const value = (id) => { const el = document.getElementById(id); return el ? el.value : ""; };
  async function draw(kind, query) {
    const div = document.getElementById("chart-" + kind + "-plot");
    if (!div || typeof Plotly === "undefined") return;
    const params = new URLSearchParams(query); if (metric()) params.set("metric", metric());
    const response = await fetch(charts.dataset.chartUrl.replace("KIND", kind) + "?" + params);
    if (!response.ok) return;
    const fig = await response.json();
    if (fig.layout && fig.layout.height) div.style.minHeight = fig.layout.height + "px";  // responsive resizes keep it inside
    await Plotly.react(div, fig.data, fig.layout, { responsive: true, displaylogo: false });
    div.dataset.drawn = fig.data.length ? "1" : "0";
  }
  function drawAll() {
    draw("param", { param: value("chart-param") });
    draw("heatmap", { x: value("chart-x"), y: value("chart-y") });
    draw("parallel", {});
    draw("train-test", {});
    draw("rounds", {});
    drawSpeedup();
  }
  function drawSpeedup() {
    draw("timeline", {}); draw("utilisation", {}); draw("busy", {}); draw("scaling", {});
  }
  ["chart-param"].forEach((id) => document.getElementById(id)?.addEventListener("change", () => draw("param", { param: value(id) })));
  ["chart-x", "chart-y"].forEach((id) => document.getElementById(id)?.addEventListener("change", () => draw("heatmap", { x: value("chart-x"), y: value("chart-y") })));
  document.getElementById("chart-metric")?.addEventListener("change", drawAll);

  loadBoard("");
  drawAll();
  if (!finished) poll();
})();
