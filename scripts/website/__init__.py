"""The checks of the built course website, one job per module (``scripts/check_site.py`` runs them all).

- ``browser``: the system's headless Chromium, driven by Playwright; ``js/*.js``: what runs in pages;
- ``server``: the built site served on 127.0.0.1;
- ``toc``: the pages the table of contents lists;
- ``pages``: each page's loading, math, images, links and requests;
- ``layout``: each page at a desktop and a phone width (overflow, figures' size and sharpness);
- ``leaks``: solution content published in the site.
"""
