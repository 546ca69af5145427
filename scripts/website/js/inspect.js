// Everything the page checks (scripts/website/pages.py) read from a loaded page, in one round trip.
// Returns {url, title, heading, prose, text, math, untypeset, typeset, mathErrors, images, links,
// outputs, downloads, launches}: see PageReport and page_problems.
() => {
  const skip = "pre, code, script, style, noscript, textarea, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: n => (n.parentElement && n.parentElement.closest(skip))
                     ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT });
  const prose = [];
  while (walker.nextNode()) prose.push(walker.currentNode.nodeValue);
  // The article's own title (the theme also prints an unnumbered copy for print only).
  const heading = document.querySelector("article.bd-article h1") || document.querySelector("h1");
  const title = heading ? heading.cloneNode(true) : null;
  if (title) title.querySelectorAll(".headerlink").forEach(e => e.remove());
  return {
    url: location.href,
    title: document.title,
    heading: title ? title.textContent.replace(/\s+/g, " ").trim() : "",
    prose: prose.join(" "),
    text: document.body.innerText,
    math: document.querySelectorAll(".math").length,
    untypeset: Array.from(document.querySelectorAll(".math"))
                    .filter(e => !e.querySelector("mjx-container"))
                    .map(e => e.textContent.trim().slice(0, 80)),
    typeset: document.querySelectorAll("mjx-container").length,
    mathErrors: Array.from(document.querySelectorAll("mjx-merror, [data-mjx-error]"))
                     .map(e => e.getAttribute("data-mjx-error") || e.textContent.slice(0, 80)),
    images: Array.from(document.images).map(i => ({src: i.currentSrc || i.src, width: i.naturalWidth})),
    links: Array.from(document.querySelectorAll("a[href]")).map(a => a.href),
    outputs: document.querySelectorAll(".cell_output").length,
    downloads: Array.from(document.querySelectorAll("a.btn-download-source-button")).map(a => a.href),
    launches: Array.from(document.querySelectorAll(".dropdown-launch-buttons a")).map(a => a.href),
  };
}
