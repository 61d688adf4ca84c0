(function () {
  "use strict";
  /* Every text below comes from the user's data: it is only ever set with textContent or text nodes. */
  var data = JSON.parse(document.getElementById("data").textContent);
  var SHOWN = 2000;      /* characters of a question shown until "show all" is clicked */
  var DIFF_MAX = 20000;  /* longer questions are shown without highlighted words */
  var results = document.getElementById("results");
  var box = document.getElementById("filter");
  var status = document.getElementById("status");
  var prev = document.getElementById("prev");
  var next = document.getElementById("next");
  var groups = data.view === "groups";
  var items = groups ? data.groups : data.rows;
  var noun = groups ? "groups" : data.noun;
  var haystacks = null;
  var matches = [];
  var page = 0;
  /* Cosine bars start a little below the lowest score or threshold, so that close scores look different. */
  var lowest = data.cosine === null ? 1 : data.cosine;
  if (!groups) data.rows.forEach(function (row) { if (row[0] < lowest) lowest = row[0]; });
  var low = Math.max(-1, Math.floor(lowest * 10) / 10 - 0.1);

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function shownId(value) { return value === null ? "" : String(value); }
  function key(token) { return token.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ""); }
  function words(text) {
    if (text.length > DIFF_MAX) return null;
    var found = new Set();
    text.split(/\s+/).forEach(function (token) { var k = key(token); if (k) found.add(k); });
    return found;
  }
  function fill(node, text, other) {
    if (!other) { node.appendChild(document.createTextNode(text)); return; }
    var run = "";
    text.split(/(\s+)/).forEach(function (token) {
      var k = key(token);
      if (k && !other.has(k)) {
        if (run) node.appendChild(document.createTextNode(run));
        run = "";
        node.appendChild(el("mark", "", token));
      } else {
        run += token;
      }
    });
    if (run) node.appendChild(document.createTextNode(run));
  }
  function question(text, other) {
    var node = el("span", "q");
    if (text.length <= SHOWN) { fill(node, text, other); return node; }
    fill(node, text.slice(0, SHOWN) + "…", other);
    var more = el("button", "more", "show all " + text.length.toLocaleString() + " characters");
    more.type = "button";
    more.addEventListener("click", function () { node.textContent = ""; fill(node, text, other); });
    node.appendChild(more);
    return node;
  }
  function side(label, id, text, other, cls) {
    var row = el("div", cls ? "side " + cls : "side");
    row.appendChild(el("span", "label", label));
    row.appendChild(id === null ? el("span") : el("code", "id", shownId(id)));
    row.appendChild(question(text, other));
    return row;
  }
  function percent(value, from) { return Math.max(0, Math.min(1, (value - from) / (1 - from))) * 100 + "%"; }
  function bar(label, value, threshold, from) {
    var row = el("span", "score");
    row.appendChild(el("span", "name", label));
    var track = el("span", "track");
    track.title = "from " + from.toFixed(1) + " to 1";
    var inner = el("span", "fill");
    inner.style.width = percent(value, from);
    track.appendChild(inner);
    if (threshold !== null) {
      var mark = el("span", "mark");
      mark.style.left = percent(threshold, from);
      mark.title = label + " threshold " + threshold.toFixed(3);
      track.appendChild(mark);
    }
    row.appendChild(track);
    row.appendChild(el("span", "value", value.toFixed(3)));
    return row;
  }
  function pairCard(index) {
    /* [cosine, rerank or null, id A, question A, id B, question B, tag, tag class] */
    var row = data.rows[index];
    var card = el("article", "pair");
    var head = el("div", "head");
    head.appendChild(el("span", "rank", "#" + (index + 1)));
    head.appendChild(bar("cosine", row[0], data.cosine, low));
    if (row[1] !== null) head.appendChild(bar("re-rank", row[1], data.rerank, 0));
    if (row[6]) head.appendChild(el("span", "tag " + row[7], row[6]));
    card.appendChild(head);
    card.appendChild(side(data.labels[0], row[2], row[3], words(row[5])));
    card.appendChild(side(data.labels[1], row[4], row[5], words(row[3])));
    return card;
  }
  function groupCard(index) {
    /* [cluster id, [[id, question], ...]]: the representative first */
    var group = data.groups[index];
    var members = group[1];
    var card = el("article", "group");
    var head = el("div", "head");
    head.appendChild(el("span", "rank", "group " + group[0]));
    head.appendChild(el("span", "tag", members.length + " questions"));
    card.appendChild(head);
    var rep = members[0];
    var repWords = words(rep[1]);
    card.appendChild(side("representative", rep[0], rep[1], null, "rep"));
    for (var i = 1; i < members.length; i++) {
      card.appendChild(side("duplicate", members[i][0], members[i][1], repWords));
    }
    return card;
  }
  function haystack(item) {
    if (groups) return item[1].map(function (m) { return shownId(m[0]) + "\n" + m[1]; }).join("\n").toLowerCase();
    return [shownId(item[2]), item[3], shownId(item[4]), item[5], item[6]].join("\n").toLowerCase();
  }
  function select(query) {
    var terms = query.toLowerCase().split(/\s+/).filter(Boolean);
    matches = [];
    if (!terms.length) {
      for (var i = 0; i < items.length; i++) matches.push(i);
      return;
    }
    if (haystacks === null) haystacks = items.map(haystack);
    for (var j = 0; j < haystacks.length; j++) {
      var text = haystacks[j];
      if (terms.every(function (term) { return text.indexOf(term) !== -1; })) matches.push(j);
    }
  }
  function render() {
    var size = data.page_size;
    var pages = Math.max(1, Math.ceil(matches.length / size));
    page = Math.max(0, Math.min(page, pages - 1));
    var first = page * size;
    var last = Math.min(matches.length, first + size);
    var frame = document.createDocumentFragment();
    for (var i = first; i < last; i++) frame.appendChild(groups ? groupCard(matches[i]) : pairCard(matches[i]));
    if (!matches.length) frame.appendChild(el("p", "empty", items.length ? "Nothing matches the filter." : "No " + noun + "."));
    results.textContent = "";
    results.appendChild(frame);
    results.dataset.matches = String(matches.length);
    results.dataset.page = String(page + 1);
    var of = matches.length === items.length ? "" : " matching, of " + items.length.toLocaleString();
    status.textContent = matches.length
      ? (first + 1).toLocaleString() + "–" + last.toLocaleString() + " of " + matches.length.toLocaleString() + " " + noun + of
      : "0 " + noun + of;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }
  function remember() {
    var params = new URLSearchParams();
    if (box.value) params.set("filter", box.value);
    if (page) params.set("page", String(page + 1));
    try { history.replaceState(null, "", "#" + params.toString()); } catch (ignored) { /* file pages may refuse */ }
  }
  var wait = null;
  box.addEventListener("input", function () {
    clearTimeout(wait);
    wait = setTimeout(function () { page = 0; select(box.value); render(); remember(); }, 120);
  });
  prev.addEventListener("click", function () { page -= 1; render(); remember(); window.scrollTo(0, 0); });
  next.addEventListener("click", function () { page += 1; render(); remember(); window.scrollTo(0, 0); });
  var asked = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
  box.value = asked.get("filter") || "";
  page = Math.max(0, (parseInt(asked.get("page") || "1", 10) || 1) - 1);
  select(box.value);
  render();
})();
