// A poll answered by the login page (the session ended) reloads the whole page onto it,
// instead of drawing the login form inside the dashboard.
document.addEventListener("htmx:beforeSwap", function (event) {
  var url = event.detail.xhr.responseURL;
  if (url && new URL(url).pathname === "/login/" && location.pathname !== "/login/") {
    event.detail.shouldSwap = false;
    window.location.href = url;
  }
});

// Confirmations (clusters/web/confirm.py): a form posted with htmx into the page's
// <dialog id="confirm-dialog"> opens it as a modal. Its Cancel link closes it; a confirmed
// form that updates a section of the page (a deletion) closes it once answered. Without
// JavaScript the same confirmation is a page of its own.
document.addEventListener("htmx:afterSwap", function (event) {
  var dialog = event.detail.target;
  if (dialog && dialog.tagName === "DIALOG" && dialog.classList.contains("confirm-host")) {
    if (!dialog.open) dialog.showModal();
    var button = dialog.querySelector("#confirm-name, #confirm-button, #skip-button");
    if (button) button.focus();
  }
});
document.addEventListener("htmx:afterRequest", function (event) {
  var form = event.detail.elt;
  var dialog = form && form.closest ? form.closest("dialog.confirm-host") : null;
  var target = event.detail.target;
  if (dialog && dialog.open && target && !dialog.contains(target) && event.detail.successful) {
    dialog.close();
  }
});
document.addEventListener("click", function (event) {
  var link = event.target.closest ? event.target.closest("[data-dialog-close]") : null;
  var dialog = link ? link.closest("dialog") : null;
  if (dialog) {
    event.preventDefault();
    dialog.close();
  }
});
