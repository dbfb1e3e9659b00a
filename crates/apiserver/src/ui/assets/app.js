// The page: which view the address asks for (`#` the DaemonSets, `#ds=<namespace>/<name>`
// one of them), the informers behind it, and the DOM. Informers only queue what they
// receive; `flush` applies every queue and redraws once per animation frame, so a rollout
// sweeping 10,000 nodes costs one recomputation and one canvas draw per frame.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  // --- Credentials -------------------------------------------------------------------

  // A token in the fragment (`#token=...`, never sent to the server) is kept for this tab's
  // session and taken out of the address bar.
  function takeFragmentToken() {
    const params = new URLSearchParams(location.hash.slice(1));
    const token = params.get("token");
    if (!token) return;
    Api.setToken(token);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "#" + rest : ""));
  }

  function showFailure(error) {
    const box = $("failure");
    box.hidden = false;
    box.textContent = error.message || String(error);
    if (error instanceof Api.StatusError && (error.code === 401 || error.code === 403)) {
      $("login").hidden = false;
      $("login-hint").textContent =
        error.code === 401
          ? "The server needs credentials: a client certificate in the browser, or a bearer token."
          : "These credentials may not read this. Another token?";
    }
  }

  async function whoAmI() {
    const token = Api.token();
    $("logout").hidden = !token;
    try {
      const response = await fetch("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          ...(token ? { Authorization: "Bearer " + token } : {}),
        },
        body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }),
      });
      if (!response.ok) return;
      const review = await response.json();
      const user = review.status && review.status.userInfo;
      if (user) $("who").textContent = user.username + (token ? " (token)" : " (certificate)");
    } catch (_) {
      // Only a label: the views report their own failures.
    }
  }

  // --- Batching ----------------------------------------------------------------------

  let scheduled = false;

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(flush);
    // A hidden tab gets no animation frames; keep its state current anyway, slowly.
    setTimeout(flush, 250);
  }

  // What an informer feeds: the last list and the watch events since, until drained.
  function sink(onReset, onEvent) {
    return {
      items: null,
      queue: [],
      listing: false, // a list's pages are still coming
      started: false, // has a first page
      synced: false, // has had a whole list
      reset(items) {
        this.items = items;
        this.queue = [];
        this.listing = true;
        schedule();
      },
      listed() {
        this.listing = false;
        schedule();
      },
      push(event) {
        this.queue.push(event);
        schedule();
      },
      failed: showFailure,
      // Applies what came in; whether anything did.
      drain() {
        let changed = false;
        if (this.items) {
          onReset(this.items);
          this.items = null;
          this.started = true;
          changed = true;
        }
        if (this.queue.length) {
          const queue = this.queue;
          this.queue = [];
          for (const e of queue) onEvent(e.type, e.object);
          changed = true;
        }
        if (this.started && !this.listing && !this.synced) {
          this.synced = true;
          changed = true;
        }
        return changed;
      },
    };
  }

  // --- DaemonSets (every view) -------------------------------------------------------

  const daemonSets = new Map(); // "namespace/name" -> DaemonSet
  const keyOf = (o) => o.metadata.namespace + "/" + o.metadata.name;
  const dsSink = sink(
    (items) => {
      daemonSets.clear();
      for (const ds of items) daemonSets.set(keyOf(ds), ds);
    },
    (type, ds) => {
      if (type === "DELETED") daemonSets.delete(keyOf(ds));
      else daemonSets.set(keyOf(ds), ds);
    },
  );

  function condition(ds, type) {
    return ((ds.status && ds.status.conditions) || []).find((c) => c.type === type);
  }

  function conditionText(c) {
    return c.type + "=" + c.status + (c.reason ? " (" + c.reason + ")" : "");
  }

  function rolloutControls(ds) {
    const a = ds.metadata.annotations || {};
    const parts = [];
    if (a["pernode.io/paused"] === "true") parts.push("paused");
    if (a["pernode.io/partition"] !== undefined) parts.push("partition " + a["pernode.io/partition"]);
    if (a["pernode.io/rollout-waves"] !== undefined) parts.push("waves " + a["pernode.io/rollout-waves"]);
    if (a["pernode.io/wave-soak"] !== undefined) parts.push("soak " + a["pernode.io/wave-soak"]);
    if (a["pernode.io/max-failed-nodes"] !== undefined) {
      parts.push("health gate " + a["pernode.io/max-failed-nodes"] + " failed nodes" +
        (a["pernode.io/auto-rollback"] === "true" ? " with auto-rollback" : ""));
    }
    if (a["pernode.io/health-gate-tripped"] !== undefined) {
      parts.push("health gate tripped at revision " + a["pernode.io/health-gate-tripped"]);
    }
    return parts.join(", ");
  }

  function renderList() {
    const rows = $("ds-rows");
    const keys = Array.from(daemonSets.keys()).sort();
    const fragment = document.createDocumentFragment();
    for (const key of keys) {
      const ds = daemonSets.get(key);
      const s = ds.status || {};
      const tr = el("tr");
      tr.append(el("td", ds.metadata.namespace));
      const link = el("a", ds.metadata.name, { href: "#ds=" + encodeURIComponent(key) });
      const name = el("td");
      name.append(link);
      tr.append(name);
      for (const n of [
        s.desiredNumberScheduled,
        s.currentNumberScheduled,
        s.numberReady,
        s.updatedNumberScheduled,
        s.numberAvailable,
      ]) {
        tr.append(el("td", n || 0, { class: "num" }));
      }
      tr.append(el("td", rolloutControls(ds)));
      const conditions = el("td");
      for (const c of (s.conditions || [])) {
        conditions.append(el("span", conditionText(c), { class: "condition " + c.status, title: c.message || "" }));
      }
      tr.append(conditions);
      fragment.append(tr);
    }
    rows.replaceChildren(fragment);
    $("ds-empty").hidden = keys.length > 0;
  }

  // --- One DaemonSet -----------------------------------------------------------------

  let detail = null;

  function openDetail(key) {
    closeDetail();
    const [namespace, name] = key.split("/");
    const fleet = new Fleet.Fleet();
    const events = new Map();
    detail = {
      key,
      namespace,
      name,
      fleet,
      events,
      uid: null,
      informers: [],
      grid: new Grid.Grid($("grid")),
      firstPaint: null,
      sinks: {
        nodes: sink(
          (items) => fleet.resetNodes(items),
          (type, node) => fleet.applyNode(type, node),
        ),
        pods: sink(
          (items) => fleet.resetPods(items),
          (type, pod) => fleet.applyPod(type, pod),
        ),
        revisions: sink(
          (items) => fleet.resetRevisions(items),
          (type, rev) => fleet.applyRevision(type, rev),
        ),
        events: sink(
          (items) => {
            events.clear();
            for (const e of items) events.set(e.metadata.uid, e);
          },
          (type, e) => {
            if (type === "DELETED") events.delete(e.metadata.uid);
            else events.set(e.metadata.uid, e);
          },
        ),
      },
    };
    $("ds-title").textContent = key;
    $("list").hidden = true;
    $("detail").hidden = false;
    const summary = $("summary");
    for (const a of Array.from(summary.attributes)) {
      if (a.name.startsWith("data-")) summary.removeAttribute(a.name);
    }
    summary.textContent = "Loading…";
    // The nodes and the events need nothing of the DaemonSet; its pods and revisions wait for
    // its selector and uid (see `flush`).
    detail.informers.push(new Api.Informer("/api/v1/nodes", {}, detail.sinks.nodes).start());
    detail.informers.push(
      new Api.Informer(
        "/api/v1/namespaces/" + encodeURIComponent(namespace) + "/events",
        { fieldSelector: "involvedObject.kind=DaemonSet,involvedObject.name=" + name },
        detail.sinks.events,
      ).start(),
    );
  }

  function closeDetail() {
    if (!detail) return;
    for (const i of detail.informers) i.stop();
    detail = null;
  }

  // Starts the pod and revision informers once the DaemonSet is known.
  function watchDaemonSetObjects(ds) {
    detail.uid = ds.metadata.uid;
    const ns = "/namespaces/" + encodeURIComponent(detail.namespace);
    const labelSelector = Api.selectorString(ds.spec && ds.spec.selector);
    detail.informers.push(
      new Api.Informer("/api/v1" + ns + "/pods", { labelSelector }, detail.sinks.pods).start(),
      new Api.Informer(
        "/apis/apps/v1" + ns + "/controllerrevisions",
        { labelSelector },
        detail.sinks.revisions,
      ).start(),
    );
  }

  function flushDetail(dsChanged) {
    const ds = daemonSets.get(detail.key);
    if (!dsSink.synced) return;
    if (!ds) {
      $("summary").textContent = "No DaemonSet " + detail.key + ".";
      return;
    }
    if (detail.uid && detail.uid !== ds.metadata.uid) {
      openDetail(detail.key); // Deleted and created again: start over.
      return;
    }
    if (!detail.uid) watchDaemonSetObjects(ds);
    const fleet = detail.fleet;
    fleet.setDaemonSet(ds);
    const s = detail.sinks;
    let changed = dsChanged;
    for (const k of ["nodes", "pods", "revisions"]) changed = s[k].drain() || changed;
    if (s.events.drain()) renderEvents();
    // Availability after minReadySeconds changes with the clock alone.
    if (!changed && !detail.waitingForMinReady) return;
    renderHeader(ds);
    // Drawn from the first pages on; the counters are final once every list is whole.
    if (!(s.nodes.started && s.pods.started && s.revisions.synced)) return;
    const counts = fleet.compute(Date.now());
    detail.grid.draw(fleet.states);
    renderSummary(counts, s.nodes.synced && s.pods.synced);
    detail.waitingForMinReady = counts.waitingForMinReady;
    if (counts.waitingForMinReady) setTimeout(schedule, 1000);
  }

  function renderHeader(ds) {
    const spec = ds.spec || {};
    const strategy = spec.updateStrategy || {};
    const parts = [strategy.type || "RollingUpdate"];
    const ru = strategy.rollingUpdate;
    if (ru && ru.maxUnavailable !== undefined) parts.push("maxUnavailable " + ru.maxUnavailable);
    if (ru && ru.maxSurge !== undefined) parts.push("maxSurge " + ru.maxSurge);
    if (spec.minReadySeconds) parts.push("minReadySeconds " + spec.minReadySeconds);
    const controls = rolloutControls(ds);
    if (controls) parts.push(controls);
    const deadline = (ds.metadata.annotations || {})["pernode.io/progress-deadline-seconds"];
    if (deadline) parts.push("progress deadline " + deadline + "s");
    $("strategy").textContent = parts.join(" · ");
    const list = $("conditions");
    list.replaceChildren();
    for (const c of ((ds.status && ds.status.conditions) || [])) {
      const item = el("li", conditionText(c), { class: "condition " + c.status });
      if (c.message) item.append(el("span", " " + c.message, { class: "message" }));
      list.append(item);
    }
  }

  function renderSummary(c, whole) {
    const summary = $("summary");
    const data = {
      synced: String(whole),
      nodes: c.nodes,
      desired: c.desired,
      current: c.current,
      ready: c.ready,
      available: c.available,
      unavailable: c.unavailable,
      updated: c.updated,
      misscheduled: c.misscheduled,
      revision: c.revision,
      paused: String(c.paused),
      partition: c.partition === undefined ? "" : c.partition,
      waves: c.waves === undefined ? "" : c.waves,
      waveSoak: c.waveSoak === undefined ? "" : c.waveSoak,
      maxFailedNodes: c.maxFailedNodes === undefined ? "" : c.maxFailedNodes,
      autoRollback: String(c.autoRollback),
      gateTripped: c.gateTripped === undefined ? "" : c.gateTripped,
      gateStopped: String(c.gateStopped),
      failedNodes: c.failedNodes.join(","),
    };
    Fleet.STATE_NAMES.forEach((name, i) => {
      data["cells-" + name.replace(/ .*/, "")] = c.cells[i];
    });
    for (const [k, v] of Object.entries(data)) summary.dataset[toCamel(k)] = String(v);
    // When the grid was first drawn and first whole, since navigation (measured by hand).
    if (detail.firstPaint === null) {
      detail.firstPaint = Math.round(performance.now());
      summary.dataset.firstPaintMs = String(detail.firstPaint);
    }
    if (whole && !summary.dataset.wholeMs) summary.dataset.wholeMs = String(Math.round(performance.now()));
    summary.textContent =
      c.desired + " desired on " + c.nodes + " nodes · " + c.current + " scheduled · " + c.ready +
      " ready · " + c.updated + " updated · " + c.available + " available · " + c.unavailable +
      " unavailable" + (c.misscheduled ? " · " + c.misscheduled + " misscheduled" : "") +
      (c.failedNodes.length ? " · " + c.failedNodes.length + " failed" : "") +
      (c.gateStopped ? " · stopped by the health gate" : "") +
      " · revision " + (c.revision || "?");
    const legend = $("legend");
    legend.replaceChildren();
    Fleet.STATE_NAMES.forEach((name, i) => {
      const item = el("li");
      const swatch = el("span", "", { class: "swatch" });
      swatch.style.background = Grid.COLOURS[i]; // CSSOM: the CSP refuses style attributes.
      item.append(swatch);
      item.append(document.createTextNode(name + " " + c.cells[i]));
      legend.append(item);
    });
  }

  function toCamel(k) {
    return k.replace(/-([a-z])/g, (_, ch) => ch.toUpperCase());
  }

  function age(timestamp) {
    const t = Date.parse(timestamp || "");
    if (Number.isNaN(t)) return "";
    const s = Math.max(0, Math.floor((Date.now() - t) / 1000));
    if (s < 120) return s + "s";
    if (s < 7200) return Math.floor(s / 60) + "m";
    if (s < 172800) return Math.floor(s / 3600) + "h";
    return Math.floor(s / 86400) + "d";
  }

  function renderEvents() {
    const last = (e) => e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp || "";
    const events = Array.from(detail.events.values()).sort((a, b) => (last(a) < last(b) ? 1 : -1));
    const rows = document.createDocumentFragment();
    for (const e of events.slice(0, 50)) {
      const tr = el("tr", null, { class: e.type === "Warning" ? "warning" : "" });
      tr.append(el("td", e.type), el("td", e.reason), el("td", age(last(e))));
      tr.append(el("td", e.count || 1, { class: "num" }), el("td", e.message));
      rows.append(tr);
    }
    $("events").replaceChildren(rows);
    $("events-empty").hidden = events.length > 0;
  }

  // --- Frames and routing --------------------------------------------------------------

  function flush() {
    if (!scheduled) return;
    scheduled = false;
    const dsChanged = dsSink.drain();
    if (detail) flushDetail(dsChanged);
    else if (dsChanged) renderList();
  }

  function route() {
    takeFragmentToken();
    const params = new URLSearchParams(location.hash.slice(1));
    const key = params.get("ds");
    if (key && key.includes("/")) {
      if (!detail || detail.key !== key) openDetail(key);
    } else {
      closeDetail();
      $("detail").hidden = true;
      $("list").hidden = false;
      renderList();
    }
    schedule();
  }

  function tooltip(event) {
    const tip = $("tip");
    if (!detail || !detail.fleet.counts) return;
    const i = detail.grid.indexAt(event);
    const lines = i >= 0 ? detail.fleet.describe(i) : null;
    if (!lines) {
      tip.hidden = true;
      return;
    }
    tip.replaceChildren(...lines.map((l, n) => el(n === 0 ? "strong" : "div", l)));
    tip.style.left = event.pageX + 12 + "px";
    tip.style.top = event.pageY + 12 + "px";
    tip.hidden = false;
  }

  function start() {
    takeFragmentToken();
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      Api.setToken($("token").value.trim());
      location.reload();
    });
    $("logout").addEventListener("click", () => {
      Api.setToken(null);
      location.reload();
    });
    $("grid").addEventListener("mousemove", tooltip);
    $("grid").addEventListener("mouseleave", () => ($("tip").hidden = true));
    window.addEventListener("hashchange", route);
    window.addEventListener("resize", () => {
      if (detail && detail.fleet.counts) detail.grid.draw(detail.fleet.states);
    });
    whoAmI();
    new Api.Informer("/apis/apps/v1/daemonsets", {}, dsSink).start();
    route();
  }

  start();
})();
