/*! mixrec widget: top-N recommendations on any page. MIT licence, the mixrec developers.
 *
 *   <div data-mixrec-endpoint="https://recs.example" data-mixrec-ratings='{"m001": 5}'
 *        data-mixrec-n="5"></div>
 *   <script src="https://recs.example/widget.js" defer></script>
 *
 * Every element with `data-mixrec-endpoint` gets an <ol class="mixrec-list"> of the best
 * `data-mixrec-n` (default 5) items for the profile in `data-mixrec-ratings` (item id to
 * rating; may be empty), asked of POST <endpoint>/v1/recommend. The page's origin must be in
 * the service's `server.cors_origins`. No styles are imposed: style the classes below.
 *
 * The element's `data-mixrec-state` says where it is: `loading`, `ready` or `error`. On an
 * error the element keeps whatever it held (put a fallback there, or hide
 * `[data-mixrec-state="error"]`), `data-mixrec-error` says why, a warning goes to the console,
 * and a `mixrec:error` event bubbles from the element; on success, `mixrec:ready`.
 * `window.mixrecWidget.render(element)` renders one element again (e.g. with new ratings).
 */
(function () {
  'use strict';

  var DEFAULT_N = 5;
  var TIMEOUT_MS = 10000;

  function fail(root, why) {
    root.setAttribute('data-mixrec-state', 'error');
    root.setAttribute('data-mixrec-error', why);
    if (window.console && console.warn) console.warn('mixrec widget: ' + why);
    root.dispatchEvent(new CustomEvent('mixrec:error', { bubbles: true, detail: { error: why } }));
  }

  function settings(root) {
    var endpoint = (root.getAttribute('data-mixrec-endpoint') || '').replace(/\/+$/, '');
    if (!/^https?:\/\//i.test(endpoint)) throw new Error('data-mixrec-endpoint must be an http(s) URL');
    var ratings;
    try {
      ratings = JSON.parse(root.getAttribute('data-mixrec-ratings') || '{}');
    } catch (e) {
      throw new Error('data-mixrec-ratings is not JSON: ' + e.message);
    }
    if (!ratings || typeof ratings !== 'object' || Array.isArray(ratings)) {
      throw new Error('data-mixrec-ratings must be a JSON object of item id to rating');
    }
    var n = parseInt(root.getAttribute('data-mixrec-n') || DEFAULT_N, 10);
    if (!(n >= 1)) throw new Error('data-mixrec-n must be a positive whole number');
    return { endpoint: endpoint, ratings: ratings, n: n };
  }

  function list(items) {
    var ol = document.createElement('ol');
    ol.className = 'mixrec-list';
    items.forEach(function (p) {
      var li = document.createElement('li');
      li.className = 'mixrec-item';
      li.setAttribute('data-item', p.item);
      var title = document.createElement('span');
      title.className = 'mixrec-title';
      title.textContent = p.title || p.item;
      var rating = document.createElement('span');
      rating.className = 'mixrec-rating';
      rating.textContent = ' ' + p.rating.toFixed(1) + ' \u2605';
      rating.title = 'predicted rating ' + p.rating.toFixed(1) + ' \u00b1 ' + p.spread.toFixed(1);
      li.appendChild(title);
      li.appendChild(rating);
      ol.appendChild(li);
    });
    return ol;
  }

  function render(root) {
    var s;
    try {
      s = settings(root);
    } catch (e) {
      fail(root, e.message);
      return Promise.resolve();
    }
    root.setAttribute('data-mixrec-state', 'loading');
    root.removeAttribute('data-mixrec-error');
    var abort = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = abort && setTimeout(function () { abort.abort(); }, TIMEOUT_MS);
    return fetch(s.endpoint + '/v1/recommend', {
      method: 'POST',
      mode: 'cors',
      credentials: 'omit',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ratings: s.ratings, n: s.n }),
      signal: abort ? abort.signal : undefined
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (body) {
        if (!res.ok) {
          throw new Error('the service answered ' + res.status + (body && body.detail ? ': ' + body.detail : ''));
        }
        return body;
      });
    }, function (e) {
      // The browser hides why: no network, a refused CORS check and a timeout look alike.
      throw new Error(e && e.name === 'AbortError'
        ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s'
        : 'the request failed (network, or this origin is not in server.cors_origins)');
    }).then(function (body) {
      while (root.firstChild) root.removeChild(root.firstChild);
      root.appendChild(list(body.items));
      root.setAttribute('data-mixrec-state', 'ready');
      root.dispatchEvent(new CustomEvent('mixrec:ready', { bubbles: true, detail: { items: body.items } }));
    }).catch(function (e) {
      fail(root, e.message);
    }).then(function () {
      if (timer) clearTimeout(timer);
    });
  }

  function renderAll() {
    var roots = document.querySelectorAll('[data-mixrec-endpoint]');
    for (var i = 0; i < roots.length; i++) render(roots[i]);
  }

  window.mixrecWidget = { render: render };
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', renderAll);
  } else {
    renderAll();
  }
})();
