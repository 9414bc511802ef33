// The demo Messenger: Recent tickets, a thread with its ticket pill, live updates, seen receipts.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { token: null, customer: null, tickets: new Map(), open: null, shown: new Set(), source: null };

  function claims(token) {
    const body = token.split(".")[1] || "";
    const json = atob(body.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((body.length + 3) % 4));
    return JSON.parse(json);
  }

  async function api(path, options) {
    const init = Object.assign({ headers: {} }, options || {});
    init.headers = Object.assign({ Authorization: "Bearer " + state.token }, init.headers);
    const response = await fetch(path, init);
    if (!response.ok) throw new Error(path + ": " + response.status);
    return response.json();
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function label(value) { return String(value).replace(/_/g, " "); }
  function when(iso) { return new Date(iso).toLocaleString(); }

  function renderTickets() {
    const list = $("tickets");
    const rows = Array.from(state.tickets.values()).sort((a, b) =>
      b.last_activity_at.localeCompare(a.last_activity_at));
    list.replaceChildren(...rows.map((t) => {
      const li = el("li");
      li.dataset.ticketId = t.id;
      if (state.open && state.open.id === t.id) li.classList.add("open");
      li.append(el("span", "title", t.title));
      if (t.unseen_count > 0) li.append(el("span", "unseen", String(t.unseen_count)));
      const line = el("span", "preview", t.preview);
      line.prepend(el("span", "state", label(t.state)), " ");
      li.append(line, el("span", "when", when(t.last_activity_at)));
      li.addEventListener("click", () => openThread(t.id));
      return li;
    }));
    $("empty").hidden = rows.length > 0;
  }

  function showPill(pill) {
    $("pill-title").textContent = pill.title;
    $("pill-id").textContent = "#" + pill.id;
    $("pill-state").textContent = label(pill.state);
    $("pill-state").className = "state";
  }

  function entryNode(entry) {
    const li = el("li");
    li.dataset.entryId = entry.id;
    li.dataset.kind = entry.kind;
    if (entry.kind === "ticket_created") li.textContent = "Ticket created" + (entry.text ? ": " + entry.text : "");
    else if (entry.kind === "state_changed") li.textContent = "Ticket " + label(entry.state.to) + (entry.text ? ": " + entry.text : "");
    else li.textContent = entry.text;
    if (entry.attachments && entry.attachments.length) li.append(attachmentsNode(entry.attachments));
    if (entry.trimmed) li.append(trimmedNode(entry.trimmed));
    const meta = [entry.author ? entry.author.name : null, entry.channel === "email" ? "by email" : null, when(entry.created_at)];
    li.append(el("span", "meta", meta.filter(Boolean).join(" · ")));
    return li;
  }

  // Attachment bytes are fetched with the key in the header (not in a URL) and shown from a blob:
  // inline images as images, everything else as a download link.
  async function blobUrl(path) {
    const response = await fetch(path, { headers: { Authorization: "Bearer " + state.token } });
    if (!response.ok) throw new Error(path + ": " + response.status);
    return URL.createObjectURL(await response.blob());
  }

  // "Show trimmed": the quoted history the gateway cut from an email reply, as text, folded away.
  function trimmedNode(trimmed) {
    const box = el("details", "trimmed");
    box.append(el("summary", null, "Show trimmed content"));
    box.append(el("pre", null, trimmed));
    return box;
  }

  function attachmentsNode(attachments) {
    const box = el("div", "attachments");
    for (const a of attachments) {
      const name = a.filename || "attachment";
      if (a.inline && a.content_type.startsWith("image/")) {
        const img = el("img", "inline-image");
        img.alt = name;
        blobUrl(a.url).then((url) => { img.src = url; }, () => { img.replaceWith(el("span", "missing", name)); });
        box.append(img);
      } else {
        const link = el("a", "attachment", name + " (" + Math.max(1, Math.round(a.size / 1024)) + " KB)");
        link.href = "#";
        link.addEventListener("click", async (event) => {
          event.preventDefault();
          const save = el("a");
          save.href = await blobUrl(a.url);
          save.download = name;
          save.click();
        });
        box.append(link);
      }
    }
    return box;
  }

  function addEntries(entries, atTop) {
    const fresh = entries.filter((e) => !state.shown.has(e.id));
    fresh.forEach((e) => state.shown.add(e.id));
    const nodes = fresh.map(entryNode);
    if (atTop) $("entries").prepend(...nodes); else $("entries").append(...nodes);
  }

  async function openThread(ticketId, before) {
    const query = "?limit=50" + (before ? "&before=" + encodeURIComponent(before) : "");
    const page = await api("/v1/tickets/" + encodeURIComponent(ticketId) + "/thread" + query);
    if (!before) {
      state.open = { id: ticketId, last: null };
      state.shown.clear();
      $("entries").replaceChildren();
    }
    showPill(page.pill);
    addEntries(page.entries, Boolean(before));
    if (!before && page.entries.length) state.open.last = page.entries[page.entries.length - 1].id;
    $("older").hidden = !page.page.older;
    $("older").onclick = () => openThread(ticketId, page.page.older);
    $("thread").hidden = false;
    renderTickets();
    sendSeen();
  }

  // A receipt whenever the open thread is on screen: everything up to its newest entry is seen.
  async function sendSeen() {
    if (!state.open || !state.open.last || document.visibilityState !== "visible") return;
    const body = { customer_id: state.customer, up_to: state.open.last };
    const result = await api("/v1/tickets/" + encodeURIComponent(state.open.id) + "/seen", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const ticket = state.tickets.get(result.ticket_id);
    if (ticket) { ticket.unseen_count = result.unseen_count; renderTickets(); }
  }

  function applyChange(data) {
    state.tickets.set(data.ticket.id, data.ticket);
    if (state.open && state.open.id === data.ticket.id) {
      showPill(data.ticket);
      if (data.entry) {
        addEntries([data.entry], false);
        state.open.last = data.entry.id;
        sendSeen();
      }
    }
    renderTickets();
  }

  function listen(cursor) {
    const url = "/v1/customers/" + encodeURIComponent(state.customer) + "/events?last_event_id=" + cursor +
      "&access_token=" + encodeURIComponent(state.token);
    const source = new EventSource(url);
    state.source = source;
    const status = $("status");
    source.onopen = () => { status.dataset.state = "live"; status.textContent = "live"; };
    source.onerror = () => { status.dataset.state = "offline"; status.textContent = "reconnecting…"; };
    for (const name of ["entry", "ticket"]) {
      source.addEventListener(name, (event) => applyChange(JSON.parse(event.data)));
    }
  }

  async function start(token) {
    state.token = token;
    state.customer = claims(token).c;
    $("who").textContent = "for customer " + state.customer;
    $("login").hidden = true;
    $("app").hidden = false;
    const recent = await api("/v1/customers/" + encodeURIComponent(state.customer) + "/recent-tickets");
    recent.tickets.forEach((t) => state.tickets.set(t.id, t));
    renderTickets();
    listen(recent.last_event_id);
  }

  document.addEventListener("visibilitychange", sendSeen);
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    start(fromHash);
  } else {
    $("login").hidden = false;
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      location.hash = "token=" + token;
      start(token);
    });
  }
})();
