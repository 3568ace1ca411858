// New-search form: data-set choice, estimator parameters with defaults, a grid editor with a live count.
(function () {
  "use strict";
  const { byId, setText, el, getJSON } = window.Fanout;
  const form = byId("search-form");
  if (!form) return;
  const $ = (sel) => form.querySelector(sel);
  const gridText = $("#id_param_grid");
  const editor = byId("grid-editor");
  const editorBody = editor.querySelector("tbody");

  // --- data set kind -------------------------------------------------------------------------
  function showKind() {
    const checked = form.querySelector('input[name="dataset_kind"]:checked');
    const kind = checked ? checked.value : "builtin";
    form.querySelectorAll("[data-kind]").forEach((el) => { el.hidden = el.dataset.kind !== kind; });
  }
  form.querySelectorAll('input[name="dataset_kind"]').forEach((r) => r.addEventListener("change", showKind));
  showKind();

  // --- search strategy: grid, random or successive halving ------------------------------------
  function strategy() {
    const checked = form.querySelector('input[name="strategy"]:checked');
    return checked ? checked.value : "grid";
  }
  function showStrategy() {
    const current = strategy();
    form.querySelectorAll("[data-strategy]").forEach((el) => {
      el.hidden = !el.dataset.strategy.split(" ").includes(current);
    });
    if (typeof updateCount === "function") updateCount();
  }
  form.querySelectorAll('input[name="strategy"]').forEach((r) => r.addEventListener("change", showStrategy));

  // --- estimator parameters and scorers --------------------------------------------------------
  let estimatorRequest = 0;
  async function loadEstimator() {
    const mine = ++estimatorRequest;  // answers can arrive out of order: only the latest one counts
    const name = $("#id_estimator").value;
    const pre = $("#id_preprocessing").value;
    const url = form.dataset.estimatorUrl.replace("NAME", encodeURIComponent(name)) + (pre ? "?pre=" + encodeURIComponent(pre) : "");
    const info = await getJSON(url);
    if (!info) return;
    if (mine !== estimatorRequest) return;
    setText("task-label", "(" + info.steps.join(" → ") + ", " + info.task + ")");
    const body = document.querySelector("#estimator-params tbody");
    body.replaceChildren(...info.params.map((p) => {
      const tr = el("tr");
      const add = el("button", "add to grid", "small");
      add.type = "button";
      add.addEventListener("click", () => addRow(p.name, [p.default]));
      tr.append(cell(p.name, "mono"), cell(JSON.stringify(p.default), "mono"), cellWith(add));
      return tr;
    }));
    const allowed = new Set(info.scorers);
    for (const opt of $("#id_scoring").options) {
      opt.hidden = !allowed.has(opt.value);
      if (opt.hidden) opt.selected = false;
    }
  }
  const cell = (text, cls) => el("td", text, cls);
  function cellWith(child) { const td = el("td"); td.append(child); return td; }
  $("#id_estimator").addEventListener("change", loadEstimator);
  $("#id_preprocessing").addEventListener("change", loadEstimator);
  loadEstimator();

  async function loadGenerator() {
    const name = $("#id_generator").value;
    const info = await getJSON(form.dataset.generatorUrl.replace("NAME", encodeURIComponent(name)));
    if (!info) return;
    $("#id_generator_options").placeholder = JSON.stringify(info.options);
  }
  $("#id_generator").addEventListener("change", loadGenerator);
  loadGenerator();

  // --- grid editor ------------------------------------------------------------------------------
  function parseGrid() {
    const text = gridText.value.trim();
    if (!text) return {};
    try { return JSON.parse(text); } catch (e) { return undefined; }
  }
  function formatValues(values) {
    return values.map((v) => {
      if (typeof v !== "string") return JSON.stringify(v);
      try { JSON.parse(v); return JSON.stringify(v); } catch (e) { return v.includes(",") ? JSON.stringify(v) : v; }
    }).join(", ");
  }
  function parseValues(text) {
    try { return JSON.parse("[" + text + "]"); } catch (e) { /* fall through: bare words */ }
    return text.split(",").map((t) => t.trim()).filter((t) => t.length).map((t) => {
      try { return JSON.parse(t); } catch (e) { return t; }
    });
  }
  function rowsToGrid() {
    const grid = {};
    editorBody.querySelectorAll("tr").forEach((tr) => {
      const [name, values] = tr.querySelectorAll("input");
      if (name.value.trim()) grid[name.value.trim()] = parseValues(values.value);
    });
    gridText.value = Object.keys(grid).length ? JSON.stringify(grid) : "";
    updateCount();
  }
  function addRow(name, values) {
    editor.hidden = false;
    const tr = el("tr");
    const n = el("input"); n.type = "text"; n.value = name || ""; n.className = "mono"; n.setAttribute("aria-label", "parameter");
    const v = el("input"); v.type = "text"; v.value = values ? formatValues(values) : ""; v.setAttribute("aria-label", "values");
    const rm = el("button", "remove"); rm.type = "button";
    rm.addEventListener("click", () => { tr.remove(); rowsToGrid(); });
    [n, v].forEach((input) => input.addEventListener("input", rowsToGrid));
    tr.append(cellWith(n), cellWith(v), cellWith(rm));
    editorBody.append(tr);
    rowsToGrid();
  }
  function gridToRows() {
    const grid = parseGrid();
    editorBody.replaceChildren();
    const single = grid && !Array.isArray(grid) && typeof grid === "object";
    editor.hidden = false;
    gridText.closest(".field").hidden = single && !gridText.closest(".field").classList.contains("has-error");
    if (single) for (const [k, values] of Object.entries(grid)) {
      addRow(k, Array.isArray(values) ? values : [values]);
    }
    updateCount();
  }
  byId("grid-add").addEventListener("click", () => addRow("", null));
  byId("grid-json-toggle").addEventListener("click", () => {
    const field = gridText.closest(".field");
    field.hidden = !field.hidden;
    if (field.hidden) gridToRows();
  });
  gridText.addEventListener("input", updateCount);

  // --- live size ---------------------------------------------------------------------------------
  function candidates(grid) {
    const grids = Array.isArray(grid) ? grid : [grid];
    let total = 0;
    for (const g of grids) {
      if (!g || typeof g !== "object") return NaN;
      let n = 1;
      for (const values of Object.values(g)) n *= Array.isArray(values) ? values.length : NaN;
      total += n;
    }
    return total;
  }
  function updateCount() {
    const grid = parseGrid();
    const mode = strategy();
    let c = grid === undefined ? NaN : candidates(grid);
    if (mode === "random") c = parseInt($("#id_n_iter").value || "10", 10);
    // sampled halving: n_candidates, or "exhaust" (known from the data set's size: the server counts it)
    if (mode === "halving_random") c = /^\d+$/.test($("#id_halving_n_candidates").value.trim()) ? parseInt($("#id_halving_n_candidates").value, 10) : NaN;
    // halving: the first round's candidates; later rounds keep 1/factor of them (the server counts them all)
    setText("count-prefix", mode.startsWith("halving") ? "first round: " : (mode === "random" ? "at most " : ""));
    const folds = parseInt($("#id_cv_splits").value, 10);
    setText("count-candidates", Number.isFinite(c) ? c.toLocaleString() : "?");
    setText("label-candidates", c === 1 ? "candidate" : "candidates");
    setText("count-folds", Number.isFinite(folds) ? folds : "?");
    setText("count-fits", Number.isFinite(c * folds) ? (c * folds).toLocaleString() : "?");
  }
  $("#id_cv_splits").addEventListener("input", updateCount);
  $("#id_n_iter").addEventListener("input", updateCount);
  $("#id_halving_n_candidates").addEventListener("input", updateCount);
  gridToRows();
  showStrategy();

  // --- estimate before launch: the server checks the form and estimates from past fits ----------------
  let estimateTimer = null, estimateRequest = 0;
  async function estimate() {
    const mine = ++estimateRequest;
    const out = byId("estimate");
    const response = await fetch(form.dataset.estimateUrl, { method: "POST", body: new FormData(form) });
    if (mine !== estimateRequest) return;
    const data = await response.json();
    if (data.ok) { out.textContent = "Estimate: " + data.text; out.className = "small"; return; }
    const first = Object.entries(data.errors)[0];
    const label = first && form.querySelector(`label[for="id_${first[0]}"]`);  // the field's label, not its name
    const where = !first || first[0] === "__all__" ? "" : (label ? label.textContent.trim() : first[0]) + ": ";
    out.textContent = first ? "Not ready: " + where + first[1][0].message : "";
    out.className = "small warning";
  }
  form.addEventListener("input", () => { clearTimeout(estimateTimer); estimateTimer = setTimeout(estimate, 600); });
  form.addEventListener("change", () => { clearTimeout(estimateTimer); estimateTimer = setTimeout(estimate, 300); });
  estimate();
})();
