// Waits until the page is ready to be checked: its load event, MathJax's typesetting and every
// image (lazy ones made eager) loaded or failed; fails after timeoutMs milliseconds.
// Returns {redirects: true} when the page sends the browser on (<meta http-equiv="refresh">,
// as the site's index.html does): the caller then waits for the next page to settle.
async (timeoutMs) => {
  const settled = (async () => {
    if (document.readyState !== "complete") {
      await new Promise(done => window.addEventListener("load", done, {once: true}));
    }
    for (const img of document.images) { img.loading = "eager"; }
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
    await Promise.all(Array.from(document.images).map(img => img.complete ? null :
        new Promise(done => { img.addEventListener("load", done); img.addEventListener("error", done); })));
    return {redirects: !!document.querySelector('meta[http-equiv="refresh" i]')};
  })();
  const late = new Promise((_, fail) => setTimeout(
      () => fail(new Error(`the page did not settle (load, MathJax, images) within ${timeoutMs / 1000} s`)), timeoutMs));
  return Promise.race([settled, late]);
}
