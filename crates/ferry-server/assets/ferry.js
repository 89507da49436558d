// ferry's dashboard script. Pages work without it; with it, parts update live and risky
// buttons ask first.
//
// An element with data-live="URL" is replaced by what the server sends as `update` events
// on that event stream; `reload` reloads the page (what the viewer may do changed); `done`
// ends the stream. An element with an id and data-refresh="URL" is fetched again with the
// page when that stream says `changed`. A stream the server refuses (too many live pages
// open, the session ended) is not tried again by the browser: the page says it stopped
// updating. A form with data-confirm="QUESTION" asks before it is sent.
"use strict";
function live(region, url) {
  var source = new EventSource(url);
  source.addEventListener("error", function () {
    if (source.readyState !== EventSource.CLOSED) { return; }
    var notice = document.createElement("div");
    notice.className = "notice refused stopped";
    notice.setAttribute("role", "alert");
    notice.textContent = "This page stopped updating live (too many live pages open, or your session ended): close other ferry pages and reload this one.";
    region.parentNode.insertBefore(notice, region);
  });
  return source;
}
document.querySelectorAll("[data-live]").forEach(function (region) {
  var source = live(region, region.getAttribute("data-live"));
  source.addEventListener("update", function (event) { region.innerHTML = event.data; });
  source.addEventListener("reload", function () { source.close(); window.location.reload(); });
  source.addEventListener("done", function () { source.close(); });
});
document.querySelectorAll("[data-refresh][id]").forEach(function (region) {
  var source = live(region, region.getAttribute("data-refresh"));
  var fetching = false;
  source.addEventListener("changed", function () {
    if (fetching) { return; }
    fetching = true;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
        if (fresh) { region.innerHTML = fresh.innerHTML; }
      })
      .finally(function () { fetching = false; });
  });
});
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
  });
});
