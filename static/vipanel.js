// A poll answered by the login page (the session ended) reloads the whole page onto it,
// instead of drawing the login form inside the dashboard.
document.addEventListener("htmx:beforeSwap", function (event) {
  var url = event.detail.xhr.responseURL;
  if (url && new URL(url).pathname === "/login/" && location.pathname !== "/login/") {
    event.detail.shouldSwap = false;
    window.location.href = url;
  }
});
