// The report's only script. It never builds markup from strings: text from
// the capture reaches the page through textContent, so nothing in a capture
// can become code here either.
(function () {
  'use strict';
  var body = document.body;
  var data = JSON.parse(document.getElementById('list-data').textContent);
  var captures = Array.prototype.slice.call(document.querySelectorAll('section.capture'));
  var search = document.getElementById('search');
  var counter = document.getElementById('search-count');
  var toggle = document.getElementById('commentary-toggle');
  var list = document.getElementById('list');
  var inner = document.getElementById('list-inner');
  var ROW_H = 66;
  var rows = data.rows;
  var shown = rows.map(function (_, i) { return i; });
  var activeId = null;
  var activeTag = -1;
  var byId = {};
  var haystack = rows.map(function (r, i) {
    byId[rowId(r)] = i;
    var words = [String(r[1]), r[2], r[3]];
    tagsOf(r).forEach(function (t) { words.push(data.tags[t][0]); });
    if (data.captures.length > 1) words.push(data.captures[r[0]]);
    return words.join(' ').toLowerCase();
  });

  function rowId(r) { return 'k' + r[0] + '-c' + r[1]; }
  function tagsOf(r) {
    var out = [];
    for (var i = 0; i < data.tags.length; i++) if (r[8] & (1 << i)) out.push(i);
    return out;
  }
  function num(n) { return Number(n).toLocaleString('en-US'); }
  function duration(us) {
    if (us < 1000) return us + ' µs';
    if (us < 1e6) return (us / 1e3).toFixed(1) + ' ms';
    return (us / 1e6).toFixed(3) + ' s';
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function tagSpans(r) {
    var box = el('span', 'tags');
    tagsOf(r).forEach(function (t) { box.appendChild(el('span', 'tag ' + data.tags[t][1], data.tags[t][0])); });
    return box;
  }

  // The list: only the rows in view exist in the page.
  function drawList() {
    inner.style.height = (shown.length * ROW_H) + 'px';
    var top = list.scrollTop;
    var first = Math.max(0, Math.floor(top / ROW_H) - 6);
    var last = Math.min(shown.length, Math.ceil((top + list.clientHeight) / ROW_H) + 6);
    while (inner.firstChild) inner.removeChild(inner.firstChild);
    for (var i = first; i < last; i++) {
      var r = rows[shown[i]];
      var id = rowId(r);
      var a = el('a', 'row' + (r[9] ? '' : ' brief') + (r[10] ? ' sev-' + ['', 'info', 'warning', 'error'][r[10]] : '') + (id === activeId ? ' active' : ''));
      a.href = '#' + (r[9] ? id : id + '-row');
      a.style.top = (i * ROW_H) + 'px';
      a.appendChild(el('span', 'n', String(r[1])));
      a.appendChild(el('span', 'ep', r[2] + ' → ' + r[3]));
      var meta = num(r[4] + r[5]) + ' pkts · ' + duration(r[6]);
      if (data.captures.length > 1) meta += ' · ' + data.captures[r[0]];
      a.appendChild(el('span', 'meta', meta));
      a.appendChild(tagSpans(r));
      inner.appendChild(a);
    }
  }
  list.addEventListener('scroll', function () { window.requestAnimationFrame(drawList); });
  window.addEventListener('resize', drawList);

  function reveal(id) {
    var i = byId[id];
    var at = shown.indexOf(i);
    if (at < 0) return;
    var y = at * ROW_H;
    if (y < list.scrollTop || y + ROW_H > list.scrollTop + list.clientHeight) {
      list.scrollTop = Math.max(0, y - list.clientHeight / 3);
    }
  }

  function filter() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    shown = [];
    for (var i = 0; i < rows.length; i++) {
      if (activeTag >= 0 && !(rows[i][8] & (1 << activeTag))) continue;
      var ok = true;
      for (var w = 0; w < words.length && ok; w++) ok = haystack[i].indexOf(words[w]) >= 0;
      if (ok) shown.push(i);
    }
    var total = rows.length === 1 ? '1 connection' : num(rows.length) + ' connections';
    counter.textContent = (words.length || activeTag >= 0) ? num(shown.length) + ' of ' + total : total;
    list.scrollTop = 0;
    drawList();
  }
  var timer = null;
  search.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(filter, rows.length > 20000 ? 200 : 30);
  });

  function conns(cap) {
    return Array.prototype.slice.call(cap.querySelectorAll(':scope > section.conn'));
  }
  function showCapture(cap) {
    captures.forEach(function (c) { c.hidden = c !== cap; });
  }
  function setActive(id) {
    activeId = id;
    if (id) reveal(id);
    drawList();
  }

  // A summarised connection: the card is filled from its row.
  function showSummary(id) {
    var i = byId[id];
    if (i === undefined) return false;
    var r = rows[i];
    var cap = document.getElementById('k' + r[0]);
    var card = document.getElementById('k' + r[0] + '-summary');
    if (!cap || !card) return false;
    showCapture(cap);
    conns(cap).forEach(function (c) { c.hidden = c !== card; });
    var slot = function (name) { return card.querySelector('[data-slot="' + name + '"]'); };
    slot('title').textContent = 'Connection ' + r[1] + ' (summary)';
    slot('endpoints').textContent = 'client ' + r[2] + ' ⇄ server ' + r[3];
    var tags = slot('tags');
    while (tags.firstChild) tags.removeChild(tags.firstChild);
    tags.appendChild(tagSpans(r));
    slot('info').textContent = num(r[4] + r[5]) + ' packets (' + num(r[4]) + ' from the client, ' +
      num(r[5]) + ' from the server); ' + num(r[11]) + ' bytes from the client and ' + num(r[12]) +
      ' from the server; handshake ' + data.words[r[13]] + '; ' + data.words[r[14]] +
      '; lasted ' + duration(r[6]) + ' from ' + (r[7] / 1e6).toFixed(6) + ' s.';
    var found = data.findings[id] || [];
    slot('findings').textContent = found.length
      ? found.map(function (f) { return f[0] + ': ' + f[1]; }).join('\n')
      : 'none';
    slot('conn').textContent = String(r[1]);
    setActive(id);
    return true;
  }

  function show(id, scroll) {
    if (!id) return false;
    var m = /^(k\d+-c\d+)-row$/.exec(id);
    if (m) {
      if (!showSummary(m[1])) return false;
      if (scroll) window.scrollTo(0, 0);
      return true;
    }
    var target = document.getElementById(id);
    if (!target) return false;
    var cap = target.closest('section.capture');
    if (!cap) return false;
    showCapture(cap);
    var conn = target.closest('section.conn');
    if (!conn && target === cap) {
      conn = conns(cap).filter(function (c) { return !c.classList.contains('summary-card'); })[0] || null;
    }
    conns(cap).forEach(function (c) { c.hidden = c !== conn; });
    setActive(conn ? conn.id : null);
    if (target.classList.contains('msg')) {
      document.querySelectorAll('.msg.hl').forEach(function (x) { x.classList.remove('hl'); });
      document.querySelectorAll('g.arrow.on').forEach(function (x) { x.classList.remove('on'); });
      target.classList.add('hl');
      // A tall bubble is shown from its top, a short one in the middle.
      var tall = target.getBoundingClientRect().height > window.innerHeight * 0.4;
      target.scrollIntoView({ block: tall ? 'start' : 'center' });
      // The ladder follows: its arrow for this packet comes into view too.
      var arrow = conn && conn.querySelector('g.arrow[data-target="' + target.id + '"]');
      var box = arrow && arrow.closest('.ladder-box');
      if (box) {
        arrow.classList.add('on');
        var a = arrow.getBoundingClientRect();
        var b = box.getBoundingClientRect();
        box.scrollTop += (a.top - b.top) - b.height / 2;
      }
    } else if (scroll) {
      target.scrollIntoView({ block: 'start' });
    }
    return true;
  }

  function fromHash(scroll) {
    var id = decodeURIComponent(location.hash.slice(1));
    if (!show(id, scroll) && captures.length) show(captures[0].id, false);
  }
  window.addEventListener('hashchange', function () { fromHash(true); });

  document.addEventListener('click', function (ev) {
    var t = ev.target;
    var arrow = t.closest && t.closest('g.arrow');
    if (arrow && arrow.dataset.target) {
      location.hash = arrow.dataset.target;
      return;
    }
    var chip = t.closest && t.closest('button.tag');
    if (chip) {
      var i = data.tags.map(function (x) { return x[0]; }).indexOf(chip.dataset.tag);
      activeTag = activeTag === i ? -1 : i;
      document.querySelectorAll('button.tag').forEach(function (b) {
        b.classList.toggle('on', activeTag >= 0 && b.dataset.tag === data.tags[activeTag][0]);
      });
      filter();
      return;
    }
    var graph = t.closest && t.closest('figure.tsg');
    if (graph) graph.classList.toggle('big');
  });

  // A bubble and its arrow light up together.
  function pair(ev, on) {
    var t = ev.target;
    var msg = t.closest && t.closest('.msg');
    var arrow = t.closest && t.closest('g.arrow');
    if (msg) {
      var a = document.querySelector('g.arrow[data-target="' + msg.id + '"]');
      if (a) a.classList.toggle('hl', on);
    } else if (arrow) {
      var b = document.getElementById(arrow.dataset.target);
      if (b) b.classList.toggle('hover', on);
      arrow.classList.toggle('hl', on);
    }
  }
  document.addEventListener('mouseover', function (ev) { pair(ev, true); });
  document.addEventListener('mouseout', function (ev) { pair(ev, false); });

  // One floating box explains what the pointer is on: a glossary entry
  // (data-g) or the element's own text (data-tip).
  var glossary = JSON.parse(document.getElementById('glossary').textContent);
  var tip = document.getElementById('tip');
  document.addEventListener('mouseover', function (ev) {
    var t = ev.target.closest && ev.target.closest('[data-g],[data-tip]');
    if (!t) { tip.hidden = true; return; }
    var text = t.dataset.g ? glossary[t.dataset.g] : t.dataset.tip;
    if (!text) { tip.hidden = true; return; }
    tip.textContent = text;
    tip.hidden = false;
    var r = t.getBoundingClientRect();
    var w = tip.offsetWidth;
    var h = tip.offsetHeight;
    var x = Math.min(Math.max(6, r.left), window.innerWidth - w - 6);
    var y = r.bottom + 6 + h > window.innerHeight ? r.top - h - 6 : r.bottom + 6;
    tip.style.left = x + 'px';
    tip.style.top = Math.max(6, y) + 'px';
  });
  document.addEventListener('scroll', function () { tip.hidden = true; }, true);

  toggle.addEventListener('change', function () {
    body.classList.toggle('commentary-on', toggle.checked);
  });

  filter();
  fromHash(false);
  body.classList.add('ready');
})();
