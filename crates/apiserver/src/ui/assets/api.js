// The Kubernetes API as the viewer: every request carries the bearer token kept in
// sessionStorage when one was given, else nothing but what TLS sends (the browser's client
// certificate). Informers list a collection, then watch it from the list's resourceVersion
// (bookmarks keep that version current), relisting when the server says 410 Gone, as
// client-go's reflector does. Events are queued, never applied on arrival: the page drains
// every queue once per animation frame.
"use strict";

const Api = (() => {
  const TOKEN_KEY = "pernode.token";

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function setToken(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  }

  function headers() {
    const h = { Accept: "application/json" };
    const t = token();
    if (t) h.Authorization = "Bearer " + t;
    return h;
  }

  // A failed request, with the Status the server answered (kubectl prints its message).
  class StatusError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  async function statusError(response) {
    let message = response.status + " " + response.statusText;
    try {
      const status = await response.json();
      if (status && status.message) message = status.message;
    } catch (_) {
      // Not a Status body: the HTTP status says enough.
    }
    return new StatusError(response.status, message);
  }

  async function request(path, signal) {
    const response = await fetch(path, {
      headers: headers(),
      credentials: "same-origin",
      cache: "no-store",
      signal,
    });
    if (!response.ok) throw await statusError(response);
    return response;
  }

  async function get(path, signal) {
    return (await request(path, signal)).json();
  }

  function withQuery(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, v);
    const s = q.toString();
    return s ? path + "?" + s : path;
  }

  // Objects per list request: a first page small enough to arrive at once, then larger ones
  // (each page is a round trip and a pass over the server's index).
  const FIRST_PAGE = 500;
  const PAGE = 5000;

  // One collection kept current: `sink.reset(items)` with a list's first page, `sink.push`
  // gets `{type, object}` for the other pages' objects (ADDED) and watch events,
  // `sink.listed()` once the list is whole, `sink.failed(error)` on an error that stops it
  // (401/403).
  class Informer {
    constructor(path, params, sink) {
      this.path = path;
      this.params = params || {};
      this.sink = sink;
      this.abort = new AbortController();
      this.stopped = false;
    }

    start() {
      this.run().catch((e) => {
        if (!this.stopped) this.sink.failed(e);
      });
      return this;
    }

    stop() {
      this.stopped = true;
      this.abort.abort();
    }

    async run() {
      let retryMs = 500;
      while (!this.stopped) {
        let version;
        try {
          version = await this.list();
          retryMs = 500;
          for (;;) {
            version = await this.watch(version);
            if (version === null || this.stopped) break; // Gone: relist.
          }
        } catch (e) {
          if (this.stopped) return;
          if (e instanceof StatusError && (e.code === 401 || e.code === 403)) throw e;
          // A broken connection or a restarting server: list again shortly.
          await new Promise((resolve) => setTimeout(resolve, retryMs));
          retryMs = Math.min(retryMs * 2, 8000);
        }
      }
    }

    // Lists in pages (one consistent snapshot, as client-go's pager), handing each page on as
    // it comes so the page can draw the first nodes while the rest are still on their way;
    // the list's resourceVersion.
    async list() {
      let page = await get(withQuery(this.path, { ...this.params, limit: FIRST_PAGE }), this.abort.signal);
      this.sink.reset(page.items || []);
      while (page.metadata.continue) {
        const next = { ...this.params, limit: PAGE, continue: page.metadata.continue };
        page = await get(withQuery(this.path, next), this.abort.signal);
        for (const object of page.items || []) this.sink.push({ type: "ADDED", object });
      }
      this.sink.listed();
      return page.metadata.resourceVersion;
    }

    // Watches from `version` until the stream ends: the version to continue from, or null
    // when the server no longer has it (410 Gone).
    async watch(version) {
      const path = withQuery(this.path, {
        ...this.params,
        watch: "1",
        allowWatchBookmarks: "true",
        resourceVersion: version,
      });
      let response;
      try {
        response = await request(path, this.abort.signal);
      } catch (e) {
        if (e instanceof StatusError && e.code === 410) return null;
        throw e;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return version;
        buffered += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (!line.trim()) continue;
          const event = JSON.parse(line);
          if (event.type === "ERROR") {
            if (event.object && event.object.code === 410) return null;
            throw new StatusError(event.object ? event.object.code : 500, event.object ? event.object.message : "watch error");
          }
          const rv = event.object && event.object.metadata && event.object.metadata.resourceVersion;
          if (rv) version = rv;
          if (event.type !== "BOOKMARK") this.sink.push(event);
        }
      }
    }
  }

  // A label selector as the query parameter spells it.
  function selectorString(selector) {
    if (!selector) return "";
    const parts = [];
    for (const [k, v] of Object.entries(selector.matchLabels || {})) parts.push(k + "=" + v);
    for (const e of selector.matchExpressions || []) {
      const values = (e.values || []).join(",");
      if (e.operator === "In") parts.push(e.key + " in (" + values + ")");
      else if (e.operator === "NotIn") parts.push(e.key + " notin (" + values + ")");
      else if (e.operator === "Exists") parts.push(e.key);
      else if (e.operator === "DoesNotExist") parts.push("!" + e.key);
    }
    return parts.join(",");
  }

  return { token, setToken, get, Informer, StatusError, selectorString };
})();
