// The mixrec demo page: the catalogue, star ratings, recommendations with their spread, the
// posterior over user types and the model's figures, all from the service's own API. A new
// visitor is first asked the items that tell the types apart best (`POST /v1/onboarding`),
// until the posterior is sure enough of one type; then the page is the recommendations alone.
// Plain DOM, no dependencies; text enters the page only as text nodes (titles come from data).
'use strict';

(() => {
  /** Recommendations shown. */
  const N = 10;
  /** Catalogue page asked for; a server with a lower `items_page_max` gets its default. */
  const PAGE = 1000;
  /** Catalogue pages loaded at most (search covers what is loaded). */
  const MAX_PAGES = 50;
  /** Catalogue rows shown at a time. */
  const SHOWN = 20;
  /** Types under this probability fold into "more types". */
  const MINOR = 0.01;
  /** Milliseconds between the last rating change and the request. */
  const DEBOUNCE = 150;
  /** Onboarding questions shown at a time. */
  const QUESTIONS = 5;
  /** The posterior of the likeliest type at which the page stops asking. */
  const SURE = 0.9;

  const $ = (id) => document.getElementById(id);

  const state = {
    model: null,
    ui: null,
    types: [],
    ratings: new Map(),
    titles: new Map(),
    starter: [],
    // Onboarding: whether the page is asking, the questions, the items the visitor does not
    // know (never asked again), and the likeliest type's probability.
    asking: true,
    questions: [],
    unknown: new Set(),
    sureness: 0,
    posterior: [],
    // `false` once the service turned out to have no onboarding route.
    onboarding: null,
    catalogue: [],
    total: 0,
    loading: true,
    query: '',
    shown: SHOWN,
    seq: 0,
    inflight: null,
    timer: 0,
  };

  // ---- DOM and HTTP helpers ----------------------------------------------------------------

  /** An element with attributes (`class`, `text`, `on<event>`, others as attributes) and children. */
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid !== null && kid !== undefined && kid !== false) e.append(kid);
    }
    return e;
  }

  /** An answer that is not 2xx: its status and RFC 9457 problem, when it sent one. */
  class Problem extends Error {
    constructor(status, body) {
      super((body && body.detail) || `the service answered ${status}`);
      this.status = status;
      this.type = body && body.type;
    }
  }

  async function api(path, body, signal) {
    const init = body === undefined
      ? { signal }
      : {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal,
      };
    const res = await fetch(path, init);
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (!res.ok) throw new Problem(res.status, data);
    return data;
  }

  /** `f()`, retried every second while the service answers 503 (the first model is training). */
  async function patiently(f) {
    for (;;) {
      try {
        return await f();
      } catch (e) {
        if (!(e instanceof Problem) || e.status !== 503) throw e;
        say(`${e.message} Retrying…`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  function say(text, error) {
    const s = $('status');
    s.textContent = text;
    s.classList.toggle('error', Boolean(error));
  }

  const name = (id) => state.titles.get(id) || id;
  const learn = (id, title) => { if (title) state.titles.set(id, title); };
  const fixed = (x, d = 1) => Number(x).toFixed(d);
  const percent = (p) => (p >= 0.995 ? '100 %' : p < 0.005 ? '<1 %' : `${Math.round(p * 100)} %`);

  // ---- The rating scale ---------------------------------------------------------------------

  /** How ratings are entered: stars (whole or half) on small scales, a slider otherwise. */
  function ratingUi(scale) {
    const { min, max } = scale;
    const step = scale.step || 0.5;
    const starry = (step === 1 || step === 0.5) && min >= step && max <= 10
      && Number.isInteger(max) && Number.isInteger(min / step);
    if (!starry) {
      return { mode: 'range', min, max, step: scale.step || 'any', top: max, low: min };
    }
    const values = [];
    for (let v = min; v <= max + 1e-9; v += step) values.push(Math.round(v / step) * step);
    return { mode: 'stars', values, half: step === 0.5, top: max, low: min };
  }

  /** A label's shape: the left or right half of a star, or a whole one. */
  function shape(ui, v) {
    if (!ui.half) return '';
    if (!Number.isInteger(v)) return 'l';
    return ui.values.includes(v - 0.5) ? 'r' : '';
  }

  let controls = 0;

  /** The rating control of item `id`: stars (radio buttons) or a slider, and a remove button. */
  function ratingControl(id) {
    const ui = state.ui;
    const wrap = el('div', { class: 'rate', 'data-rate': id });
    const label = `Your rating of ${name(id)}`;
    if (ui.mode === 'range') {
      const input = el('input', {
        type: 'range', min: ui.min, max: ui.max, step: ui.step, 'aria-label': label,
        onchange: (ev) => rate(id, Number(ev.target.value)),
      });
      wrap.append(input, el('span', { class: 'value' }));
    } else {
      const group = el('fieldset', { class: 'stars' }, el('legend', { class: 'sr-only', text: label }));
      const group_name = `rate-${++controls}`;
      for (const v of ui.values) {
        const input_id = `${group_name}-${String(v).replace('.', 'h')}`;
        const stars = `${v} star${v === 1 ? '' : 's'}`;
        group.append(
          el('input', {
            type: 'radio', name: group_name, id: input_id, value: v, 'aria-label': stars,
            onchange: () => rate(id, v),
          }),
          el('label', { for: input_id, class: shape(ui, v), title: stars }),
        );
      }
      wrap.append(group);
    }
    wrap.append(el('button', {
      type: 'button', class: 'unrate', 'aria-label': `Remove your rating of ${name(id)}`,
      title: 'Remove this rating', text: '×', onclick: () => unrate(id),
    }));
    show(wrap, state.ratings.get(id));
    return wrap;
  }

  /** Puts `value` (or no rating) into a control. */
  function show(wrap, value) {
    const rated = value !== undefined;
    wrap.querySelector('.unrate').hidden = !rated;
    const range = wrap.querySelector('input[type="range"]');
    if (range) {
      if (rated) range.value = value;
      wrap.querySelector('.value').textContent = rated ? fixed(value) : '–';
      return;
    }
    for (const input of wrap.querySelectorAll('input')) {
      const v = Number(input.value);
      input.checked = rated && v === value;
      input.nextElementSibling.classList.toggle('on', rated && v <= value + 1e-9);
    }
  }

  /** Every control of item `id` on the page shows its current rating. */
  function sync(id) {
    for (const wrap of document.querySelectorAll(`[data-rate="${CSS.escape(id)}"]`)) {
      show(wrap, state.ratings.get(id));
    }
  }

  function rate(id, value) {
    state.ratings.set(id, value);
    changed(id);
  }

  function unrate(id) {
    state.ratings.delete(id);
    changed(id);
    // The control just used may be gone (its row left "Your ratings").
    if (!document.activeElement || document.activeElement === document.body) $('mine-title').focus();
  }

  function changed(id) {
    sync(id);
    renderMine();
    // Busy from the change on, not only once the request leaves: the list is stale already.
    $('recs').setAttribute('aria-busy', 'true');
    clearTimeout(state.timer);
    state.timer = setTimeout(update, DEBOUNCE);
  }

  // ---- Start, recommendations, why ---------------------------------------------------------

  /**
   * The profile the page opens with, so recommendations show before any click: the two most
   * characteristic items of the most common type rated at the top of the scale, and the most
   * characteristic item of the next type at the bottom. Works on any model that has types.
   */
  function starterProfile() {
    const types = [...state.types].sort((a, b) => b.weight - a.weight);
    const picks = [];
    for (const item of (types[0] ? types[0].items.slice(0, 2) : [])) picks.push([item.id, state.ui.top]);
    const other = types.slice(1).flatMap((t) => t.items).find((i) => !picks.some((p) => p[0] === i.id));
    if (other) picks.push([other.id, state.ui.low]);
    return picks;
  }

  function useStarter() {
    state.ratings = new Map(state.starter);
    renderAll();
    update();
  }

  function clearAll() {
    state.ratings = new Map();
    state.unknown = new Set();
    state.questions = [];
    state.asking = state.onboarding !== false;
    renderAll();
    update();
  }

  /** The visitor does not know item `id`: it is not asked again. */
  function dontKnow(id) {
    state.unknown.add(id);
    state.questions = state.questions.filter((q) => q.item !== id);
    renderStart();
    update();
  }

  function askMore() {
    state.asking = true;
    renderStart();
    update();
  }

  function renderStart() {
    if (state.onboarding === false) {
      renderStarter();
      return;
    }
    const body = $('start-body');
    const buttons = el('div', { class: 'buttons' },
      state.ratings.size || state.unknown.size
        ? el('button', { type: 'button', id: 'clear', text: 'Start from no ratings', onclick: clearAll })
        : null);
    if (!state.asking) {
      const top = state.posterior && state.posterior[0];
      buttons.append(el('button', { type: 'button', id: 'ask-more', text: 'Ask me more', onclick: askMore }));
      body.replaceChildren(el('p', { id: 'sure' },
        `Your ratings point to type ${top ? top.type : '?'} (${percent(state.sureness)} likely): `
        + 'the recommendations below are yours. Rate more to refine them.'), buttons);
      return;
    }
    const intro = el('p', {}, 'Rate a few of these to get started: they are the items whose '
      + 'ratings tell the user types apart best. ',
      state.ratings.size ? `So far the page is ${percent(state.sureness)} sure of your type.` : '');
    const rows = state.questions.map((q) => el('li', { 'data-question': q.item },
      el('span', { class: 'title', text: name(q.item) }),
      el('span', { class: 'id', text: `${percent(q.known)} of users rated it` }),
      ratingControl(q.item),
      el('button', {
        type: 'button', class: 'quiet unknown', text: 'Don’t know it',
        'aria-label': `I don't know ${name(q.item)}`, onclick: () => dontKnow(q.item),
      })));
    const ul = el('ul', { id: 'questions', class: 'items' }, rows);
    if (!rows.length) ul.append(el('li', { class: 'empty', text: 'Finding questions…' }));
    buttons.append(el('button', {
      type: 'button', id: 'skip', class: 'quiet', text: 'Skip the questions',
      onclick: () => { state.asking = false; renderStart(); },
    }));
    body.replaceChildren(intro, ul, buttons);
  }

  /** The start without onboarding (a service without the route): the starter profile. */
  function renderStarter() {
    const loved = state.starter.filter((p) => p[1] === state.ui.top).map((p) => name(p[0]));
    const disliked = state.starter.filter((p) => p[1] !== state.ui.top).map((p) => name(p[0]));
    const body = $('start-body');
    const text = el('p', {});
    if (state.starter.length) {
      text.append('To get you going, the page started with a profile that loves ',
        ...list(loved), disliked.length ? ' and dislikes ' : '', ...list(disliked),
        '. Change any rating, remove it, or start from nothing.');
    } else {
      text.append('Rate items from the catalogue to get personal recommendations.');
    }
    body.replaceChildren(text, el('div', { class: 'buttons' },
      el('button', { type: 'button', id: 'clear', text: 'Start from no ratings', onclick: clearAll }),
      state.starter.length
        ? el('button', { type: 'button', id: 'starter', text: 'Back to the starter profile', onclick: useStarter })
        : null));
  }

  /** "A, B and C", each in <q>. */
  function list(names) {
    const out = [];
    names.forEach((n, i) => {
      if (i > 0) out.push(i === names.length - 1 ? ' and ' : ', ');
      out.push(el('q', { text: n }));
    });
    return out;
  }

  /** Asks for recommendations for the current ratings; the latest request wins. */
  async function update() {
    const seq = ++state.seq;
    if (state.inflight) state.inflight.abort();
    const ctl = new AbortController();
    state.inflight = ctl;
    $('recs').setAttribute('aria-busy', 'true');
    try {
      const ratings = Object.fromEntries(state.ratings);
      const body = { ratings, n: N };
      const asking = state.asking && state.onboarding !== false;
      if (asking) $('start-body').setAttribute('aria-busy', 'true');
      const [answer, asked] = await Promise.all([
        patiently(() => api('/v1/recommend', body, ctl.signal)),
        asking ? questions(ratings, ctl.signal) : null,
      ]);
      if (seq !== state.seq) return;
      if (answer.model_version !== state.model.version) await loadModel();
      for (const p of answer.items) learn(p.item, p.title);
      renderRecs(answer.items);
      renderWhy(answer.posterior);
      state.posterior = answer.posterior;
      state.sureness = answer.posterior.length ? answer.posterior[0].probability : 0;
      if (asked) {
        state.questions = asked.items;
        // Sure enough of one type after some answers: the recommendations take over.
        if (state.ratings.size && state.sureness >= SURE) state.asking = false;
      }
      renderStart();
      const n = state.ratings.size;
      say(`Recommendations for ${n} rating${n === 1 ? '' : 's'}, model version ${answer.model_version}.`);
    } catch (e) {
      if (e.name === 'AbortError') return;
      say(`Could not update the recommendations: ${e.message}`, true);
    } finally {
      if (seq === state.seq) {
        $('recs').setAttribute('aria-busy', 'false');
        $('start-body').setAttribute('aria-busy', 'false');
      }
    }
  }

  /**
   * The onboarding questions for `ratings`, leaving out the items the visitor does not know;
   * `null` (and the starter profile from then on) when the service has no such route.
   */
  async function questions(ratings, signal) {
    const body = { ratings, n: QUESTIONS, exclude: [...state.unknown] };
    try {
      const asked = await patiently(() => api('/v1/onboarding', body, signal));
      for (const q of asked.items) learn(q.item, q.title);
      return asked;
    } catch (e) {
      if (!(e instanceof Problem) || (e.status !== 404 && e.status !== 405)) throw e;
      state.onboarding = false;
      state.asking = false;
      return null;
    }
  }

  function renderRecs(items) {
    const recs = $('recs');
    const focused = recs.contains(document.activeElement)
      ? document.activeElement.closest('[data-item]') : null;
    recs.replaceChildren(...items.map(recommendation));
    if (!items.length) recs.append(el('li', { class: 'empty', text: 'Nothing left to recommend.' }));
    // A keyboard user who rated a recommendation keeps their place: the item moved to "Your
    // ratings", and so does the focus.
    if (focused && !recs.contains(document.activeElement)) {
      const moved = $('mine').querySelector(`[data-rate="${CSS.escape(focused.dataset.item)}"]`);
      const target = moved && (moved.querySelector('input:checked') || moved.querySelector('input'));
      (target || $('recs-title')).focus();
    }
  }

  function recommendation(p) {
    const { min, max } = state.model.scale;
    const at = (x) => `${((Math.min(max, Math.max(min, x)) - min) / (max - min)) * 100}%`;
    const lo = p.rating - p.spread;
    const hi = p.rating + p.spread;
    const band = el('span', { class: 'band' });
    band.style.left = at(lo);
    band.style.right = `calc(100% - ${at(hi)})`;
    const mark = el('span', { class: 'mark' });
    mark.style.left = at(p.rating);
    const spread = el('div', {
      class: 'spread', role: 'img',
      'aria-label': `predicted ${fixed(p.rating)} of ${max}, likely between ${fixed(Math.max(min, lo))} and ${fixed(Math.min(max, hi))}`,
    }, band, mark);
    return el('li', { class: 'rec', 'data-item': p.item },
      el('span', { class: 'title', text: name(p.item) }),
      el('span', { class: 'pred' },
        el('b', { text: fixed(p.rating) }), el('span', { class: 'pm', text: ` ± ${fixed(p.spread)}` })),
      spread,
      ratingControl(p.item));
  }

  function renderWhy(posterior) {
    const types = new Map(state.types.map((t) => [t.type, t]));
    const row = (p) => {
      const t = types.get(p.type);
      const fill = el('div', { class: 'fill' });
      fill.style.width = `${p.probability * 100}%`;
      const likes = t && t.items.length
        ? el('p', { class: 'likes' }, 'Rates above the others: ', list(t.items.slice(0, 3).map((i) => i.title || i.id)))
        : null;
      return el('li', { 'data-type': p.type },
        el('div', { class: 'type-head' },
          el('span', { text: `Type ${p.type}` }),
          el('span', {}, el('b', { text: percent(p.probability) }),
            t ? el('span', { class: 'share', text: ` · ${percent(t.weight)} of users` }) : null)),
        el('div', { class: 'bar', role: 'img', 'aria-label': `type ${p.type}: ${percent(p.probability)} likely` }, fill),
        likes);
    };
    const major = posterior.filter((p, i) => i === 0 || p.probability >= MINOR);
    const minor = posterior.slice(major.length);
    const why = $('why');
    why.replaceChildren(...major.map(row));
    if (minor.length) {
      why.append(el('li', {}, el('details', {},
        el('summary', { text: `${minor.length} more type${minor.length === 1 ? '' : 's'} under 1 %` }),
        el('ol', { class: 'why' }, minor.map(row)))));
    }
  }

  // ---- Your ratings, the catalogue, the model ----------------------------------------------

  function itemRow(id, attrs) {
    return el('li', attrs,
      el('span', { class: 'title', text: name(id) }),
      el('span', { class: 'id', text: id }),
      ratingControl(id));
  }

  /** Rows come and go, rows that stay are left alone: a control in use keeps its focus. */
  function renderMine() {
    const mine = $('mine');
    const rows = new Map([...mine.querySelectorAll('[data-rated]')].map((r) => [r.dataset.rated, r]));
    for (const [id, row] of rows) if (!state.ratings.has(id)) row.remove();
    for (const empty of mine.querySelectorAll('.empty')) empty.remove();
    // Ratings keep their insertion order, so a new one always goes last.
    for (const id of state.ratings.keys()) if (!rows.has(id)) mine.append(itemRow(id, { 'data-rated': id }));
    if (!state.ratings.size) {
      mine.append(el('li', { class: 'empty', text: 'None yet: rate items from the catalogue or the recommendations.' }));
    }
  }

  function renderCatalogue() {
    const q = state.query.trim().toLowerCase();
    const hits = q
      ? state.catalogue.filter((i) => i.id.toLowerCase().includes(q) || (i.title || '').toLowerCase().includes(q))
      : state.catalogue;
    const shown = hits.slice(0, state.shown);
    $('catalogue').replaceChildren(...shown.map((i) => itemRow(i.id, {})));
    const loaded = state.catalogue.length < state.total
      ? ` (${state.catalogue.length} of ${state.total} loaded${state.loading ? '…' : ''})` : '';
    $('cat-count').textContent = q
      ? `${hits.length} match${hits.length === 1 ? '' : 'es'}${loaded}`
      : `${state.total} items${loaded}`;
    $('more').hidden = shown.length >= hits.length;
  }

  async function loadCatalogue() {
    let limit = PAGE;
    let offset = 0;
    try {
      for (let pages = 0; pages < MAX_PAGES; pages++) {
        let page;
        try {
          page = await patiently(() => api(`/v1/items?offset=${offset}${limit ? `&limit=${limit}` : ''}`));
        } catch (e) {
          if (!(e instanceof Problem) || e.status !== 400 || !limit) throw e;
          limit = 0; // this server allows smaller pages: take its default size
          pages--;
          continue;
        }
        state.total = page.total;
        for (const i of page.items) learn(i.id, i.title);
        state.catalogue.push(...page.items);
        offset += page.items.length;
        renderCatalogue();
        if (!page.items.length || offset >= page.total) break;
      }
    } catch (e) {
      say(`Could not load the catalogue: ${e.message}`, true);
    } finally {
      state.loading = false;
      renderCatalogue();
    }
  }

  async function loadModel() {
    const [model, types] = await Promise.all([
      patiently(() => api('/v1/model')),
      patiently(() => api('/v1/model/types')),
    ]);
    state.model = model;
    state.ui = ratingUi(model.scale);
    state.types = types.types;
    for (const t of state.types) for (const i of t.items) learn(i.id, i.title);
    renderModel();
  }

  function renderModel() {
    const m = state.model;
    const kind = m.model === 'gpl' ? 'Gaussian pLSA' : `Gaussian mixture, ${m.algorithm === 'kmeans' ? 'k-means' : 'EM'}`;
    const trained = new Date(m.trained_at);
    const rows = [
      ['Version', String(m.version)],
      ['Kind', kind + (m.baseline ? ' over a user + item baseline' : '')],
      ['Types (K)', `${m.k}${m.k_selection === 'heldout' ? ', chosen on held-out ratings' : ''}`],
      ['Held-out RMSE', m.heldout_rmse === null || m.heldout_rmse === undefined ? 'not measured' : fixed(m.heldout_rmse, 3)],
      ['Trained at', el('time', { datetime: m.trained_at, text: Number.isNaN(trained.getTime()) ? m.trained_at : trained.toLocaleString() })],
      ['Data', `${m.n_users} users, ${m.n_items} items, ${m.n_ratings} ratings`],
      ['Scale', `${m.scale.min} to ${m.scale.max}${m.scale.step ? ` in steps of ${m.scale.step}` : ''}`],
    ];
    $('model').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]));
  }

  function renderAll() {
    renderStart();
    renderMine();
    renderCatalogue();
    for (const wrap of document.querySelectorAll('[data-rate]')) show(wrap, state.ratings.get(wrap.dataset.rate));
  }

  async function main() {
    $('search').addEventListener('input', (ev) => {
      state.query = ev.target.value;
      state.shown = SHOWN;
      renderCatalogue();
    });
    $('more').addEventListener('click', () => {
      state.shown += SHOWN;
      renderCatalogue();
    });
    try {
      await loadModel();
    } catch (e) {
      say(`Could not load the model: ${e.message}`, true);
      return;
    }
    state.starter = starterProfile();
    // A new visitor starts from nothing and is asked; the starter profile only stands in when
    // the service cannot ask (`questions` finds no route, and the page starts over with it).
    renderAll();
    await update();
    if (state.onboarding === false) {
      state.ratings = new Map(state.starter);
      renderAll();
      await update();
    }
    loadCatalogue();
  }

  main();
})();
