// ferry's dashboard script. Pages work without it; with it, parts update live and risky
// buttons ask first.
//
// An element with data-live="URL" is replaced by what the server sends as `update` events
// on that event stream; `reload` reloads the page (what the viewer may do changed); `done`
// ends the stream. A form with data-confirm="QUESTION" asks before it is sent.
"use strict";
document.querySelectorAll("[data-live]").forEach(function (region) {
  var source = new EventSource(region.getAttribute("data-live"));
  source.addEventListener("update", function (event) { region.innerHTML = event.data; });
  source.addEventListener("reload", function () { source.close(); window.location.reload(); });
  source.addEventListener("done", function () { source.close(); });
});
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
  });
});
