// While a worker writes, offer problems already on this workshop's board (这些问题已经有人反映过),
// so they can press 我也遇到 instead of writing the same again. Nothing is stored: the text goes
// to the server in a POST body (never a URL) and is compared with published summaries only.
(function () {
  "use strict";
  var box = document.getElementById("similar");
  var body = document.getElementById("body");
  if (!box || !body || !window.fetch || !window.URLSearchParams) { return; }
  var url = box.getAttribute("data-url");
  var list = box.querySelector("ul");
  // The 我也遇到 forms live outside the submission form (forms do not nest): each button
  // names its form, so pressing it never sends what the worker is writing.
  var forms = document.getElementById("similar-forms");
  var workshop = document.querySelector("input[name=w]");
  var timer = null;
  var last = "";
  function show(items) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    while (forms.firstChild) { forms.removeChild(forms.firstChild); }
    items.forEach(function (item, i) {
      var li = document.createElement("li");
      var link = document.createElement("a");
      link.href = "/board/" + item.id;
      link.textContent = item.summary;
      var form = document.createElement("form");
      form.method = "post";
      form.action = "/board/" + item.id + "/support";
      form.id = "similar-support-" + i;
      forms.appendChild(form);
      var button = document.createElement("button");
      button.type = "submit";
      button.className = "support-button";
      button.setAttribute("form", form.id);
      button.textContent = "我也遇到（" + item.supports + "）";
      li.appendChild(link);
      li.appendChild(button);
      list.appendChild(li);
    });
    box.hidden = items.length === 0;
  }
  function ask() {
    var text = body.value.trim();
    if (text.length < 6 || text === last) { return; }
    last = text;
    var data = new URLSearchParams();
    data.set("q", text.slice(0, 500));
    data.set("w", workshop ? workshop.value : "");
    fetch(url, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(function (r) { show(r.items || []); })
      .catch(function () { /* offline or slow: the worker just goes on writing */ });
  }
  body.addEventListener("input", function () {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(ask, 700);
  });
})();
