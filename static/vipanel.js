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
// Copy buttons (data-copy names the element whose text to copy). The buttons are hidden in
// the HTML and shown here, so a page without JavaScript never offers one that cannot work;
// the text itself is always on the page to select. The clipboard API needs a secure context
// (https or localhost); elsewhere the text is selected and copied the old way.
function vipanelCopyButtons(root) {
  root.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
  });
}

function vipanelSelect(element) {
  var range = document.createRange();
  range.selectNodeContents(element);
  var selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source) return;
  var text = source.textContent.trim();
  var status = button.parentElement.querySelector(".copied");
  function said(message) {
    if (status) status.textContent = message;
  }
  function fallback() {
    vipanelSelect(source);
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    said(ok ? "Copied." : "Selected: press Ctrl+C to copy.");
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () {
      said("Copied.");
    }, fallback);
  } else {
    fallback();
  }
});

document.addEventListener("DOMContentLoaded", function () {
  vipanelCopyButtons(document);
});
document.addEventListener("htmx:afterSwap", function (event) {
  vipanelCopyButtons(document);
});

// The new cluster's "Another node row": without JavaScript a link that reloads the page with
// one row more; here a copy of the formset's empty row, numbered, with the next priority down.
document.addEventListener("click", function (event) {
  var link = event.target.closest("#add-node-row");
  var total = document.getElementById("id_nodes-TOTAL_FORMS");
  var template = document.getElementById("node-row-template");
  if (!link || !total || !template) return;
  event.preventDefault();
  var index = parseInt(total.value, 10);
  var max = parseInt(link.getAttribute("data-max"), 10);
  if (index >= max) return;
  var html = template.innerHTML.replace(/__prefix__/g, String(index)).replace(/__number__/g, String(index + 1));
  document.getElementById("node-rows").insertAdjacentHTML("beforeend", html);
  var priority = document.getElementById("id_nodes-" + index + "-priority");
  if (priority) priority.value = String(Math.max(1, 120 - 10 * index));
  total.value = String(index + 1);
  if (index + 1 >= max) link.hidden = true;
  var name = document.getElementById("id_nodes-" + index + "-name");
  if (name) name.focus();
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
