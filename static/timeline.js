// Zoom the failover timeline by dragging across it: the dragged span becomes the page's From
// and To (ISO times in UTC, which the form takes as they say), and the server draws it. Without
// JavaScript the presets above the picture do the same with links.
(function () {
  "use strict";
  var MIN_DRAG = 4; // picture units: less is a click, not a drag

  function iso(ms) {
    return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  function zoomTo(since, until) {
    var url = new URL(window.location.href);
    url.searchParams.set("since", iso(since));
    url.searchParams.set("until", iso(until));
    url.searchParams.delete("last");
    window.location.assign(url.toString());
  }

  function setUp(svg) {
    var x0 = parseFloat(svg.dataset.x0), x1 = parseFloat(svg.dataset.x1);
    var start = Date.parse(svg.dataset.start), end = Date.parse(svg.dataset.end);
    var width = svg.viewBox.baseVal.width;
    var band = svg.querySelector(".tl-zoom");
    var from = null;

    function pictureX(event) {
      var box = svg.getBoundingClientRect();
      var x = (event.clientX - box.left) * width / box.width;
      return Math.min(x1, Math.max(x0, x));
    }
    function moment(x) {
      return start + (x - x0) / (x1 - x0) * (end - start);
    }
    function show(a, b) {
      band.setAttribute("x", Math.min(a, b));
      band.setAttribute("width", Math.abs(b - a));
    }
    function stop() {
      from = null;
      band.setAttribute("display", "none");
    }

    svg.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) return;
      from = pictureX(event);
      svg.setPointerCapture(event.pointerId);
      show(from, from);
      band.removeAttribute("display");
      event.preventDefault();
    });
    svg.addEventListener("pointermove", function (event) {
      if (from !== null) show(from, pictureX(event));
    });
    svg.addEventListener("pointerup", function (event) {
      if (from === null) return;
      var a = Math.min(from, pictureX(event)), b = Math.max(from, pictureX(event));
      stop();
      if (b - a >= MIN_DRAG) zoomTo(moment(a), moment(b));
    });
    svg.addEventListener("pointercancel", stop);
    svg.classList.add("zoomable");
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("svg.timeline[data-start]").forEach(setUp);
    document.querySelectorAll(".js-only").forEach(function (el) { el.hidden = false; });
  });
})();
