// A poll answered by the login page (the session ended) reloads the whole page onto it,
// instead of drawing the login form inside the dashboard.
document.addEventListener("htmx:beforeSwap", function (event) {
  var url = event.detail.xhr.responseURL;
  if (url && new URL(url).pathname === "/login/" && location.pathname !== "/login/") {
    event.detail.shouldSwap = false;
    window.location.href = url;
  }
});

// The browser's time zone, for the server to show times in (clusters/web/timezones.py). A page
// drawn in UTC only for want of it is reloaded once the cookie is set (GET pages only).
(function () {
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone) return;
  var value = encodeURIComponent(zone);
  var match = document.cookie.match(/(?:^|;\s*)vipanel_tz=([^;]*)/);
  if (match && match[1] === value) return;
  var secure = window.location.protocol === "https:" ? "; secure" : "";
  document.cookie = "vipanel_tz=" + value + "; path=/; max-age=31536000; samesite=lax" + secure;
  if (document.documentElement.hasAttribute("data-time-zone-reload")) window.location.reload();
})();
