// Helpers shared by the page scripts (loaded before them on every page): lookups, text, elements, JSON.
(function () {
  "use strict";
  const byId = (id) => document.getElementById(id);

  // The text of the element with this id, when the page has one.
  function setText(id, value) {
    const node = byId(id);
    if (node) node.textContent = value;
  }

  // A new element, with its text and class when given.
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  // The JSON answer to a GET of `url`, or null when the answer is not OK.
  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    return response.ok ? response.json() : null;
  }

  window.Fanout = Object.freeze({ byId, setText, el, getJSON });
})();
