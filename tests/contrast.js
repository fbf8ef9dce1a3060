// Every text of the page against what is behind it (WCAG 2 contrast): 4.5:1, or 3:1 for large
// text; the timeline's own words (VIP names, ticks, legend) against the card. Returns the
// failures, one line each. Evaluated by tests/test_browser_looks.py.
() => {
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const rgba = (s) => { const m = s.match(/[\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; };
  const over = (top, below) => top.slice(0, 3).map((c, i) => c * top[3] + below[i] * (1 - top[3]));
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      if (e instanceof SVGElement && e.tagName !== 'svg') continue;
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let base = [255, 255, 255];
    for (const c of layers.reverse()) base = over(c, base);
    return base;
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const bad = [];
  const check = (el, colour, large) => {
    const bg = background(el);
    const fg = over(rgba(colour), bg);
    const r = ratio(fg, bg);
    if (r < (large ? 3 : 4.5)) {
      const what = el.className.baseVal ?? el.className;
      bad.push(`${el.tagName.toLowerCase()}.${what} "${el.textContent.trim().slice(0, 30)}" ${r.toFixed(2)}`);
    }
  };
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') || ['SCRIPT', 'STYLE', 'OPTION', 'TITLE'].includes(el.tagName)) continue;
    if (!el.getClientRects().length || getComputedStyle(el).visibility === 'hidden') continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const s = getComputedStyle(el);
    const size = parseFloat(s.fontSize), weight = parseInt(s.fontWeight, 10);
    check(el, s.color, size >= 24 || (size >= 18.66 && weight >= 700));
  }
  for (const el of document.querySelectorAll('svg.timeline .tl-ink, svg.timeline .tl-muted')) {
    if (!el.getClientRects().length) continue;
    check(el, getComputedStyle(el).fill, false);
  }
  return bad;
}
