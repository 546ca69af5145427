// Measures, at the current window size, what sticks out of the text column, what is cut off,
// and how large the smallest text of each figure is drawn. Everything in CSS pixels.
// Argument: minFontPx, the size of a figure's smallest text per pixel of its declared width.
// Returns {column, footnotePx, problems, figures, searches}: see scripts/website/layout.py.
(minFontPx) => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const column = article.getBoundingClientRect();
  // The size of the site's footnotes: a probe footnote, styled by the theme like a real one.
  const probe = document.createElement("aside");
  probe.className = "footnote";
  probe.innerHTML = "<p>probe</p>";
  article.appendChild(probe);
  const footnotePx = parseFloat(getComputedStyle(probe.querySelector("p")).fontSize);
  probe.remove();
  const describe = e => (e.textContent || e.getAttribute("src") || "").replace(/\s+/g, " ").trim().slice(0, 70);
  const visible = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const problems = [];
  const root = document.documentElement;
  // clientWidth is the layout viewport; a phone browser widens innerWidth to fit wide content
  if (root.scrollWidth > root.clientWidth + 1) {
    problems.push(`the page scrolls sideways: ${root.scrollWidth} px wide in a ${root.clientWidth} px window`);
  }
  const boxes = [
    ["equation", "mjx-container[display='true']"],
    ["output", "div.cell_output"],
    ["code", "div.highlight pre"],
    ["table", "article table"],
  ];
  for (const [kind, selector] of boxes) {
    for (const e of document.querySelectorAll(selector)) {
      if (!visible(e) || e.closest(".toggle-hidden, details:not([open])")) continue;
      const r = e.getBoundingClientRect();
      const style = getComputedStyle(e);
      const scrolls = ["auto", "scroll"];
      // scrollable ancestors inside the column count as the box that holds it
      let holder = e, held = false;
      while (holder && holder !== article) {
        if (scrolls.includes(getComputedStyle(holder).overflowX) && holder.getBoundingClientRect().right <= column.right + 1) { held = true; break; }
        holder = holder.parentElement;
      }
      if (r.right > column.right + 1 && !held) {
        problems.push(`${kind} sticks out of the text column by ${Math.round(r.right - column.right)} px: ${describe(e)}`);
      }
      if (e.scrollWidth > e.clientWidth + 1 && !scrolls.includes(style.overflowX)) {
        problems.push(`${kind} cut off: ${e.scrollWidth - e.clientWidth} px of it hidden and no scroll bar: ${describe(e)}`);
      }
      if (e.scrollHeight > e.clientHeight + 1 && ["hidden", "clip"].includes(style.overflowY)) {
        problems.push(`${kind} cut off at the top or bottom by ${e.scrollHeight - e.clientHeight} px: ${describe(e)}`);
      }
    }
  }
  const figures = [];
  for (const img of document.querySelectorAll("div.cell_output img")) {
    if (!img.naturalWidth || !visible(img)) continue;
    // a high-density ("retina") figure stores more pixels than its declared width: its text is
    // minFontPx per declared pixel, so scale against the declared width
    const declared = (img.style.width.endsWith("px") && parseFloat(img.style.width))
        || parseFloat(img.getAttribute("width")) || img.naturalWidth;
    const scale = img.getBoundingClientRect().width / declared;
    figures.push({src: img.getAttribute("src"), scale: scale, textPx: minFontPx * scale,
                  density: img.naturalWidth / declared,
                  width: img.getBoundingClientRect().width, fits: img.getBoundingClientRect().width <= column.width + 1});
  }
  const searches = Array.from(document.querySelectorAll(
      "input[type='search'], .search-button-field, button.search-button, form.bd-search"))
      .filter(e => visible(e) && !e.closest(".search-button__wrapper:not(.show)") && !e.closest("dialog:not([open])"));
  return {column: column.width, footnotePx, problems, figures, searches: searches.length};
}
