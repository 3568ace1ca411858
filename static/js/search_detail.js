// Search detail: live progress without reloading, then the leaderboard and the Plotly charts.
(function () {
  "use strict";
  const { byId, setText, el, getJSON } = window.Fanout;
  const progress = byId("progress");
  if (!progress) return;
  const charts = byId("charts");
  const board = byId("leaderboard");
  let finished = progress.dataset.finished === "1";
  let lastDone = -1;
  let polls = 0;

  function render(p) {
    byId("progress-bar").style.width = p.percent + "%";
    setText("p-done", p.done); setText("p-percent", p.percent.toFixed(1)); setText("p-failed", p.failed);
    setText("p-elapsed", p.elapsed.toFixed(2));
    setText("p-eta", p.eta === null ? "–" : Math.round(p.eta) + " s");
    setText("p-cores", p.cores_used === null ? "–" : p.cores_used);
    setText("p-best", p.best_score === null ? "–" : p.best_score.toFixed(4));
    const badge = byId("status-badge");
    badge.textContent = p.status; badge.className = "badge " + p.status;
    setText("p-busy", p.busy.length
      ? "Busy: " + p.busy.map((b) => `${b.host} (unit ${b.unit}, runner pid ${b.runner_pid}, ${b.processes ?? "?"} processes, ${b.fits_run} fits)`).join("; ")
      : (p.hosts.length ? "Machines that ran fits: " + p.hosts.join(", ") : ""));
    const warnings = byId("s-warnings");
    if (warnings) warnings.replaceChildren(...p.warnings.map((w) => el("li", w)));
    if (p.speedup !== null) setText("s-speedup", p.speedup.toFixed(2) + "×");
    if (p.efficiency !== null) setText("s-efficiency", Math.round(p.efficiency * 100) + "%");
    const error = byId("p-error");
    error.hidden = !p.error; error.textContent = p.error;
    byId("cancel-form").hidden = p.finished;
    byId("p-refit").hidden = !p.refitting;
    byId("p-preparing").hidden = !p.preparing;
    if (p.preparing) setText("p-stored", p.preparing.stored);
    document.querySelectorAll("a.export").forEach((a) => { a.hidden = p.status !== "done"; });
    if (p.best_params) {
      byId("best").hidden = false;
      setText("best-params", JSON.stringify(p.best_params, null, 1));
    }
  }

  async function poll() {
    try {
      const p = await getJSON(progress.dataset.url);
      if (p) {
        render(p);
        if (p.finished && !finished) { finished = true; loadBoard(""); drawAll(); loadModel(); }
        else if (!p.finished && p.done !== lastDone && ++polls % 5 === 0) drawSpeedup();  // the timeline grows live
        if (!p.finished && p.done !== lastDone) { lastDone = p.done; setText("board-count", p.done); }
        finished = p.finished;
      }
    } finally {
      if (!finished) setTimeout(poll, 1000);
    }
  }

  async function loadModel() {
    const section = byId("model");
    const response = await fetch(section.dataset.url);
    if (!response.ok) return;
    section.innerHTML = await response.text();
    section.hidden = false;
  }

  async function loadBoard(query) {
    const response = await fetch(board.dataset.url + query);
    if (!response.ok) return;
    byId("leaderboard-body").innerHTML = await response.text();
  }
  board.addEventListener("click", (event) => {
    const link = event.target.closest("a");
    if (!link || !link.getAttribute("href").startsWith("?")) return;
    event.preventDefault();
    loadBoard(link.getAttribute("href"));
  });

  const value = (id) => { const input = byId(id); return input ? input.value : ""; };
  const metric = () => value("chart-metric");
  async function draw(kind, query) {
    const div = byId("chart-" + kind + "-plot");
    if (!div || typeof Plotly === "undefined") return;
    const params = new URLSearchParams(query); if (metric()) params.set("metric", metric());
    const fig = await getJSON(charts.dataset.chartUrl.replace("KIND", kind) + "?" + params);
    if (!fig) return;
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
  ["chart-param"].forEach((id) => byId(id)?.addEventListener("change", () => draw("param", { param: value(id) })));
  ["chart-x", "chart-y"].forEach((id) => byId(id)?.addEventListener("change", () => draw("heatmap", { x: value("chart-x"), y: value("chart-y") })));
  byId("chart-metric")?.addEventListener("change", drawAll);

  loadBoard("");
  drawAll();
  if (!finished) poll();
})();
