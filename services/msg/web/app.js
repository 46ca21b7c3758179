// The messaging page of a Skyfleet node, for phones on the node's network.
// Plain JavaScript with no outside resource; every URL is relative to /msg/.
// Message texts and addresses come from other nodes, so they only ever reach
// the page as textContent, never as markup.
'use strict';

(function () {
  const MAX_TEXT = 1000;   // bytes of UTF-8, as services/msg counts them
  const POLL_MS = 3000;    // inbox and outbox refresh
  const $ = (id) => document.getElementById(id);
  const utf8 = new TextEncoder();

  let state = '';          // loading | login | closed | app
  let mode = '';           // the node's messaging mode: passphrase | open | closed
  let timer = null;
  let refreshing = false;
  let lastInbox = '', lastOutbox = '';
  let lastOK = null;

  function show(s) {
    state = s;
    document.body.dataset.state = s;
    $('login').hidden = s !== 'login';
    $('closed').hidden = s !== 'closed';
    $('app').hidden = s !== 'app';
    $('logout').hidden = !(s === 'app' && mode === 'passphrase');
    if (s === 'app') {
      if (!timer) timer = setInterval(refresh, POLL_MS);
    } else if (timer) {
      clearInterval(timer);
      timer = null;
    }
    if (s === 'login') $('passphrase').focus();
  }

  function banner(msg) {
    $('banner').textContent = msg || '';
    $('banner').hidden = !msg;
  }

  // api calls path (relative to /msg/) and returns {status, body, headers}.
  // A body given as json is sent as JSON, which the node requires of a POST.
  async function api(path, json) {
    const opts = {credentials: 'same-origin', cache: 'no-store', headers: {}};
    if (json !== undefined) {
      opts.method = 'POST';
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(json);
    }
    const resp = await fetch(path, opts);
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    return {status: resp.status, body: body, headers: resp.headers};
  }

  function errorOf(r) {
    return (r.body && r.body.error) ? r.body.error : 'HTTP ' + r.status;
  }

  // admitted handles an answer of a messaging path: true when it was
  // served; otherwise it shows the login, the closed notice or an error.
  function admitted(r) {
    if (r.status === 200) {
      mode = r.headers.get('X-Skyfleet-Messaging') || mode;
      if (state !== 'app') show('app');
      return true;
    }
    const m = r.body && r.body.messaging;
    if (m) mode = m;
    if (r.status === 401 && m === 'passphrase') {
      show('login');
      return false;
    }
    if (r.status === 401 && m === 'closed') {
      show('closed');
      return false;
    }
    banner('The node answered: ' + errorOf(r));
    return false;
  }

  async function refresh() {
    if (refreshing || document.hidden) return;
    refreshing = true;
    try {
      const [ib, ob] = await Promise.all([api('inbox'), api('outbox')]);
      if (!admitted(ib) || !admitted(ob)) return;
      banner('');
      lastOK = new Date();
      $('updated').textContent = 'Updated ' + lastOK.toLocaleTimeString();
      const ibs = JSON.stringify(ib.body), obs = JSON.stringify(ob.body);
      if (ibs !== lastInbox) { lastInbox = ibs; renderInbox(ib.body || []); }
      if (obs !== lastOutbox) { lastOutbox = obs; renderOutbox(ob.body || []); }
    } catch (e) {
      const since = lastOK ? ' since ' + lastOK.toLocaleTimeString() : '';
      banner('No answer from the node' + since + '; showing what it last said.');
    } finally {
      refreshing = false;
    }
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // times adds "sent ..." and the like for each known time; a node that has
  // not learnt the date yet (a Pi has no clock) sends and shows none.
  function times(parent, pairs) {
    let any = false;
    for (const [label, iso] of pairs) {
      const d = iso ? new Date(iso) : null;
      if (!d || isNaN(d)) continue;
      const t = el('time', '', label + ' ' + d.toLocaleString([], {dateStyle: 'short', timeStyle: 'short'}));
      t.dateTime = iso;
      parent.append(t);
      any = true;
    }
    if (!any) parent.append(el('span', '', 'time unknown'));
  }

  function renderInbox(list) {
    const ol = $('inbox');
    ol.replaceChildren();
    const newest = list.slice().reverse();
    for (const m of newest) {
      const li = el('li', 'msg');
      li.dataset.id = m.id;
      const head = el('div', 'meta');
      head.append(el('span', '', 'from'), el('span', 'addr from', m.from));
      if (m.broadcast) head.append(el('span', 'tag', 'to everyone'));
      if (m.clear) head.append(el('span', 'tag', 'in clear'));
      li.append(head, el('p', 'text', m.text));
      const foot = el('div', 'meta');
      times(foot, [['sent', m.sent_at], ['received', m.received_at]]);
      const reply = el('button', 'small reply', 'Reply');
      reply.type = 'button';
      reply.addEventListener('click', () => {
        $('to').value = m.from;
        checkCompose();
        $('text').focus();
        $('compose').scrollIntoView({behavior: 'smooth'});
      });
      foot.append(reply);
      li.append(foot);
      ol.append(li);
    }
    $('inbox-empty').hidden = list.length > 0;
    $('inbox-count').textContent = list.length ? '(' + list.length + ')' : '';
  }

  function renderOutbox(list) {
    const ol = $('outbox');
    ol.replaceChildren();
    for (const m of list.slice().reverse()) {
      const li = el('li', 'msg');
      li.dataset.id = m.id;
      li.dataset.state = m.state;
      const head = el('div', 'meta');
      head.append(el('span', '', 'to'), el('span', 'addr to', m.to === '*' ? 'everyone' : m.to),
        el('span', 'state state-' + m.state, m.state));
      if (m.clear) head.append(el('span', 'tag', 'in clear'));
      li.append(head, el('p', 'text', m.text));
      const foot = el('div', 'meta');
      times(foot, [['sent', m.sent_at], ['delivered', m.delivered_at]]);
      li.append(foot);
      ol.append(li);
    }
    $('outbox-empty').hidden = list.length > 0;
  }

  // A recipient is a Skycoin-style address (base58), a compressed public key
  // in hex, or * for every node.
  const ADDRESS = /^[1-9A-HJ-NP-Za-km-z]{25,36}$/;
  const PUBKEY = /^0[23][0-9a-fA-F]{64}$/;

  function validTo(s) {
    return s === '*' || ADDRESS.test(s) || PUBKEY.test(s);
  }

  // checkCompose updates the byte counter and the recipient hint, and lets
  // Send through only for a message the node would take.
  function checkCompose() {
    const n = utf8.encode($('text').value).length;
    const counter = $('counter');
    counter.textContent = n + ' / ' + MAX_TEXT + ' bytes';
    counter.classList.toggle('over', n > MAX_TEXT);
    const to = $('to').value.trim();
    const badTo = to !== '' && !validTo(to);
    $('to-hint').classList.toggle('error', badTo);
    $('send').disabled = n === 0 || n > MAX_TEXT || !validTo(to);
    return !$('send').disabled;
  }

  function sendStatus(msg, isError) {
    const p = $('send-status');
    p.textContent = msg;
    p.classList.toggle('error', !!isError);
    p.hidden = !msg;
  }

  async function send(ev) {
    ev.preventDefault();
    if (!checkCompose()) return;
    $('send').disabled = true;
    sendStatus('Sending…');
    try {
      const r = await api('send', {to: $('to').value.trim(), text: $('text').value, clear: $('clear').checked});
      if (r.status === 200) {
        $('text').value = '';
        sendStatus('Sent: this node holds it until it can pass it on.');
        lastOutbox = '';
        await refresh();
      } else if (r.status === 401) {
        admitted(r);
        sendStatus('');
      } else {
        sendStatus('Not sent: ' + errorOf(r), true);
      }
    } catch (e) {
      sendStatus('Not sent: no answer from the node.', true);
    } finally {
      checkCompose();
    }
  }

  async function login(ev) {
    ev.preventDefault();
    const err = $('login-error');
    err.hidden = true;
    $('login-button').disabled = true;
    try {
      const r = await api('login', {passphrase: $('passphrase').value});
      if (r.status === 200) {
        $('passphrase').value = '';
        mode = (r.body && r.body.messaging) || mode;
        lastInbox = lastOutbox = '';
        show('app');
        await refresh();
        return;
      }
      let msg = errorOf(r);
      if (r.status === 401 && r.body && r.body.messaging === 'passphrase') msg = 'Wrong passphrase.';
      if (r.status === 429) {
        msg = 'Too many wrong passphrases from this phone: wait ' + (r.headers.get('Retry-After') || '60') + ' s.';
      }
      if (r.body && r.body.messaging === 'closed') {
        show('closed');
        return;
      }
      err.textContent = msg;
      err.hidden = false;
    } catch (e) {
      err.textContent = 'No answer from the node.';
      err.hidden = false;
    } finally {
      $('login-button').disabled = false;
    }
  }

  async function logout() {
    try { await api('logout', {}); } catch (e) { /* the session ends on its own */ }
    lastInbox = lastOutbox = '';
    $('inbox').replaceChildren();
    $('outbox').replaceChildren();
    show('login');
  }

  async function whoami() {
    try {
      const r = await fetch('../status', {cache: 'no-store'});
      const st = await r.json();
      $('self').textContent = (st.name ? st.name + ' · ' : '') + st.address;
    } catch (e) {
      $('self').textContent = 'unknown';
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('compose').addEventListener('submit', send);
    $('text').addEventListener('input', () => { sendStatus(''); checkCompose(); });
    $('to').addEventListener('input', checkCompose);
    $('login').addEventListener('submit', login);
    $('logout').addEventListener('click', logout);
    document.addEventListener('visibilitychange', () => { if (!document.hidden && state === 'app') refresh(); });
    show('loading');
    whoami();
    refresh();
  });
})();
