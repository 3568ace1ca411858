// Upload page: preview the chosen CSV and offer its columns as the target (an .npz needs none). Plain JS, no libraries.
// Without JavaScript the form still works: the target stays a text input and the server checks everything.
(function () {
  "use strict";
  const { byId, el } = window.Fanout;

  const PREVIEW_BYTES = 64 * 1024;
  const PREVIEW_ROWS = 10;
  const TARGET_NAMES = ["label", "target", "y", "class"];

  const fileInput = byId("id_file");
  const preview = byId("csv-preview");
  const textTarget = byId("id_target");
  if (!fileInput || !preview || !textTarget || !window.FileReader) return;
  let targetInput = textTarget;  // the element named "target" now in the form (input or select)

  // CSV rows from text: commas, double-quoted fields with "" escapes and embedded commas/newlines, CRLF.
  function parseCsv(text, maxRows) {
    const rows = [];
    let row = [];
    let cell = "";
    let quoted = false;
    let i = 0;
    const n = text.length;
    function endRow() {
      row.push(cell);
      cell = "";
      if (row.some((c) => c.trim() !== "")) rows.push(row);
      row = [];
    }
    while (i < n && rows.length < maxRows) {
      const ch = text[i];
      if (quoted) {
        if (ch === '"') {
          if (text[i + 1] === '"') { cell += '"'; i += 1; } else { quoted = false; }
        } else {
          cell += ch;
        }
      } else if (ch === '"' && cell.trim() === "") {
        quoted = true;
        cell = "";
      } else if (ch === ",") {
        row.push(cell);
        cell = "";
      } else if (ch === "\n" || ch === "\r") {
        if (ch === "\r" && text[i + 1] === "\n") i += 1;
        endRow();
      } else {
        cell += ch;
      }
      i += 1;
    }
    if (i >= n && rows.length < maxRows && (cell !== "" || row.length)) endRow();
    return rows;
  }

  function showMessage(text, className) {
    preview.replaceChildren(el("p", text, className || "muted small"));
    preview.hidden = false;
  }

  function clearPreview() {
    preview.replaceChildren();
    preview.hidden = true;
  }

  function renderTable(header, rows, note) {
    const table = el("table", null, "preview");
    const thead = el("thead");
    const tr = el("tr");
    header.forEach((h) => tr.appendChild(el("th", h)));
    thead.appendChild(tr);
    table.appendChild(thead);
    const tbody = el("tbody");
    rows.forEach((r) => {
      const line = el("tr");
      for (let j = 0; j < header.length; j += 1) line.appendChild(el("td", r[j] === undefined ? "" : r[j]));
      tbody.appendChild(line);
    });
    table.appendChild(tbody);
    preview.replaceChildren(table, el("p", note, "muted small"));
    preview.hidden = false;
  }

  function useTextInput() {
    if (targetInput === textTarget) return;
    targetInput.replaceWith(textTarget);
    targetInput = textTarget;
  }

  function useSelect(columns) {
    const current = targetInput.value.trim();
    const select = el("select");
    select.name = textTarget.name;
    select.id = textTarget.id;
    select.required = textTarget.required;
    if (textTarget.getAttribute("aria-describedby")) {
      select.setAttribute("aria-describedby", textTarget.getAttribute("aria-describedby"));
    }
    columns.forEach((c) => {
      const option = el("option", c);
      option.value = c;
      select.appendChild(option);
    });
    const lower = columns.map((c) => c.toLowerCase());
    let chosen = columns.indexOf(current);
    for (let k = 0; chosen < 0 && k < TARGET_NAMES.length; k += 1) chosen = lower.indexOf(TARGET_NAMES[k]);
    select.selectedIndex = chosen >= 0 ? chosen : columns.length - 1;
    targetInput.replaceWith(select);
    targetInput = select;
  }

  function onText(file, text) {
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);  // byte order mark
    const truncated = file.size > PREVIEW_BYTES;
    if (truncated) {
      const cut = Math.max(text.lastIndexOf("\n"), text.lastIndexOf("\r"));
      if (cut > 0) text = text.slice(0, cut);  // drop the partial last line
    }
    const rows = parseCsv(text, PREVIEW_ROWS + 1);
    if (rows.length === 0) {
      useTextInput();
      showMessage("The file looks empty: a header row and at least one data row are needed.", "error");
      return;
    }
    const header = rows[0].map((h) => h.trim());
    const body = rows.slice(1);
    const note = body.length
      ? "First " + body.length + " row" + (body.length === 1 ? "" : "s") + " of " + file.name + " (" +
        header.length + " columns). The server checks the whole file on upload."
      : "Only a header row was found in the start of the file; at least one data row is needed.";
    renderTable(header, body, note);
    const columns = header.filter((h, idx) => h !== "" && header.indexOf(h) === idx);
    if (columns.length) useSelect(columns); else useTextInput();
  }

  fileInput.addEventListener("change", () => {
    const file = fileInput.files && fileInput.files[0];
    if (!file) {
      clearPreview();
      useTextInput();
      return;
    }
    const maxBytes = parseInt(fileInput.getAttribute("data-max-bytes") || "0", 10);
    const npz = /\.npz$/i.test(file.name);
    if (!npz && !/\.csv$/i.test(file.name)) {
      useTextInput();
      showMessage(file.name + " does not end in .csv or .npz; expected a .csv file or a NumPy .npz archive.", "error");
      return;
    }
    if (maxBytes && file.size > maxBytes) {
      useTextInput();
      showMessage(file.name + " is " + (file.size / 1048576).toFixed(1) + " MB; the limit is " +
        (maxBytes / 1048576).toFixed(0) + " MB.", "error");
      return;
    }
    if (npz) {  // arrays X, y (the target) and optionally groups: the server reads and checks them
      useTextInput();
      textTarget.value = "";
      showMessage(file.name + ": NumPy arrays X, y and optionally groups; no target column is needed.");
      return;
    }
    const reader = new FileReader();
    reader.onload = () => {
      if (fileInput.files[0] === file) onText(file, String(reader.result || ""));
    };
    reader.onerror = () => {
      useTextInput();
      showMessage("Cannot read " + file.name + " in the browser; the server will still check it on upload.");
    };
    reader.readAsText(file.slice(0, PREVIEW_BYTES), "utf-8");
  });
})();
