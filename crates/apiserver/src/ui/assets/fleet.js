// One DaemonSet across the fleet: the nodes, the DaemonSet's pods and revisions as the
// informers last saw them, and from them one state per node plus the status counters the
// controller computes (its daemonset::status, upstream's updateDaemonSetStatus), so the page
// can be compared with `status` field by field. With a health gate (pernode.io/max-failed-nodes)
// an updated pod the gate counts (pernode_core::health_gate's judge, ported below) is "failed".
"use strict";

const Fleet = (() => {
  // Cell states, in legend order.
  const UPDATED = 0;
  const OLD = 1;
  const UNAVAILABLE = 2;
  const MISSING = 3;
  const EXCLUDED = 4;
  const FAILED = 5;
  const STATE_NAMES = ["updated", "old revision", "unavailable", "missing", "excluded", "failed"];

  const HASH_LABEL = "controller-revision-hash";
  const GENERATION_LABEL = "pod-template-generation";
  const TEMPLATE_GENERATION = "deprecated.daemonset.template.generation";
  const PARTITION = "pernode.io/partition";
  const PAUSED = "pernode.io/paused";
  const WAVES = "pernode.io/rollout-waves";
  const WAVE_SOAK = "pernode.io/wave-soak";
  const MAX_FAILED = "pernode.io/max-failed-nodes";
  const AUTO_ROLLBACK = "pernode.io/auto-rollback";
  const TRIPPED = "pernode.io/health-gate-tripped";
  const DEADLINE = "pernode.io/progress-deadline-seconds";
  const FAILING_REASONS = ["CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError"];

  function conditionOf(obj, type) {
    const conditions = (obj && obj.status && obj.status.conditions) || [];
    return conditions.find((c) => c.type === type);
  }

  // Why the health gate counts an updated pod on `node` as failed, or "" (as the controller's
  // judge: a failing waiting reason, not Ready by the deadline, the node NotReady since after
  // the pod came and within the deadline; a node NotReady before is not counted).
  function failure(pod, node, deadlineMs, now) {
    const created = Date.parse(pod.metadata.creationTimestamp || "");
    const due = created + deadlineMs;
    const nodeReady = conditionOf(node, "Ready");
    if (!nodeReady) return "";
    if (nodeReady.status !== "True") {
      const since = Date.parse(nodeReady.lastTransitionTime || "");
      // Seconds resolution, as the controller compares: the same second counts as before.
      return since > created && since <= due ? "node NotReady" : "";
    }
    const status = pod.status || {};
    for (const c of (status.initContainerStatuses || []).concat(status.containerStatuses || [])) {
      const reason = c.state && c.state.waiting && c.state.waiting.reason;
      if (FAILING_REASONS.includes(reason)) return reason;
    }
    const ready = conditionOf(pod, "Ready");
    if (ready && ready.status === "True") return "";
    if (Number.isNaN(due) || now < due) return "";
    const changed = Date.parse((ready && ready.lastTransitionTime) || "");
    return Number.isNaN(changed) || changed < due ? "not Ready within the progress deadline" : "";
  }

  function byName(a, b) {
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function isControlledBy(obj, uid) {
    return (obj.metadata.ownerReferences || []).some((r) => r.controller && r.uid === uid);
  }

  // The node a daemon pod is for: its nodeName once bound, else the node its affinity pins.
  function podNode(pod) {
    if (pod.spec && pod.spec.nodeName) return pod.spec.nodeName;
    const terms =
      pod.spec &&
      pod.spec.affinity &&
      pod.spec.affinity.nodeAffinity &&
      pod.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
    for (const term of (terms && terms.nodeSelectorTerms) || []) {
      for (const f of term.matchFields || []) {
        if (f.key === "metadata.name" && f.operator === "In" && f.values && f.values.length === 1) {
          return f.values[0];
        }
      }
    }
    return "";
  }

  function readyCondition(pod) {
    const conditions = (pod.status && pod.status.conditions) || [];
    return conditions.find((c) => c.type === "Ready");
  }

  // Bound pods first, then the oldest, then by name: the pod the controller's status reads.
  function podOrder(a, b) {
    const bound = Boolean(b.spec && b.spec.nodeName) - Boolean(a.spec && a.spec.nodeName);
    if (bound !== 0) return bound;
    const ca = a.metadata.creationTimestamp || "";
    const cb = b.metadata.creationTimestamp || "";
    return byName(ca, cb) || byName(a.metadata.name, b.metadata.name);
  }

  // Partition N as the controller resolves it against the desired count (percent rounds up).
  function resolvePartition(value, desired) {
    if (value === undefined) return 0;
    const percent = value.endsWith("%");
    const n = Number.parseInt(percent ? value.slice(0, -1) : value, 10);
    if (Number.isNaN(n) || n < 0) return 0;
    return Math.min(percent ? Math.ceil((n * desired) / 100) : n, desired);
  }

  class Fleet {
    constructor() {
      this.ds = null;
      this.place = null; // Placement.judge(ds), rebuilt when the template changes.
      this.templateKey = "";
      this.nodes = new Map(); // name -> node
      this.placements = new Map(); // name -> placement, dropped when the node changes
      this.names = []; // node names in order, rebuilt when the set changes
      this.namesDirty = true;
      this.pods = new Map(); // uid -> pod of this DaemonSet
      this.revisions = new Map(); // uid -> ControllerRevision of this DaemonSet
      this.states = new Uint8Array(0);
      this.counts = null;
    }

    setDaemonSet(ds) {
      this.ds = ds;
      const key = JSON.stringify(ds && ds.spec && ds.spec.template && ds.spec.template.spec);
      if (key !== this.templateKey) {
        this.templateKey = key;
        this.place = ds ? Placement.judge(ds) : null;
        this.placements.clear();
      }
    }

    resetNodes(items) {
      this.nodes.clear();
      this.placements.clear();
      for (const n of items) this.nodes.set(n.metadata.name, n);
      this.namesDirty = true;
    }

    applyNode(type, node) {
      const name = node.metadata.name;
      this.placements.delete(name);
      if (type === "DELETED") {
        this.nodes.delete(name);
        this.namesDirty = true;
      } else {
        if (!this.nodes.has(name)) this.namesDirty = true;
        this.nodes.set(name, node);
      }
    }

    resetPods(items) {
      this.pods.clear();
      for (const p of items) this.applyPod("ADDED", p);
    }

    applyPod(type, pod) {
      const uid = pod.metadata.uid;
      if (type === "DELETED" || !this.ds || !isControlledBy(pod, this.ds.metadata.uid)) {
        this.pods.delete(uid);
      } else {
        this.pods.set(uid, pod);
      }
    }

    resetRevisions(items) {
      this.revisions.clear();
      for (const r of items) this.applyRevision("ADDED", r);
    }

    applyRevision(type, rev) {
      const uid = rev.metadata.uid;
      if (type === "DELETED" || !this.ds || !isControlledBy(rev, this.ds.metadata.uid)) {
        this.revisions.delete(uid);
      } else {
        this.revisions.set(uid, rev);
      }
    }

    // The current revision's hash: the label of the highest-numbered ControllerRevision.
    currentHash() {
      let best = null;
      for (const r of this.revisions.values()) if (!best || r.revision > best.revision) best = r;
      return (best && best.metadata.labels && best.metadata.labels[HASH_LABEL]) || "";
    }

    placement(name) {
      let p = this.placements.get(name);
      if (!p) {
        p = this.place(this.nodes.get(name));
        this.placements.set(name, p);
      }
      return p;
    }

    // Recomputes every node's state and the counters; returns the counters.
    compute(now) {
      if (this.namesDirty) {
        this.names = Array.from(this.nodes.keys()).sort(byName);
        this.namesDirty = false;
      }
      const ds = this.ds;
      const hash = this.currentHash();
      const annotations = (ds && ds.metadata.annotations) || {};
      const generation = annotations[TEMPLATE_GENERATION];
      const minReady = ((ds && ds.spec && ds.spec.minReadySeconds) || 0) * 1000;
      const byNode = new Map();
      for (const pod of this.pods.values()) {
        const phase = pod.status && pod.status.phase;
        // Terminal pods being deleted are gone for the controller.
        if (pod.metadata.deletionTimestamp && (phase === "Succeeded" || phase === "Failed")) continue;
        const node = podNode(pod);
        const first = byNode.get(node);
        if (!first || podOrder(pod, first) < 0) byNode.set(node, pod);
      }
      const c = {
        nodes: this.names.length,
        desired: 0,
        current: 0,
        ready: 0,
        available: 0,
        updated: 0,
        misscheduled: 0,
        cells: [0, 0, 0, 0, 0, 0],
        waitingForMinReady: false,
        failedNodes: [],
      };
      const gated = annotations[MAX_FAILED] !== undefined || annotations[TRIPPED] !== undefined;
      const deadlineMs = (Number.parseInt(annotations[DEADLINE] || "600", 10) || 600) * 1000;
      this.failures = new Map();
      if (this.states.length !== this.names.length) this.states = new Uint8Array(this.names.length);
      this.firstPods = byNode;
      for (let i = 0; i < this.names.length; i++) {
        const name = this.names[i];
        const pod = byNode.get(name);
        let state;
        if (!ds || !this.placement(name).shouldRun) {
          if (pod) c.misscheduled++;
          state = EXCLUDED;
        } else {
          c.desired++;
          if (!pod) {
            state = MISSING;
          } else {
            c.current++;
            const labels = pod.metadata.labels || {};
            const updated =
              (hash !== "" && labels[HASH_LABEL] === hash) ||
              (generation !== undefined && labels[GENERATION_LABEL] === generation);
            if (updated) c.updated++;
            const ready = readyCondition(pod);
            let available = false;
            if (ready && ready.status === "True") {
              c.ready++;
              const since = Date.parse(ready.lastTransitionTime || "");
              available = minReady === 0 || (!Number.isNaN(since) && since + minReady <= now);
              if (available) c.available++;
              else c.waitingForMinReady = true;
            }
            state = !available ? UNAVAILABLE : updated ? UPDATED : OLD;
            const why = gated && updated && !pod.metadata.deletionTimestamp
              ? failure(pod, this.nodes.get(name), deadlineMs, now)
              : "";
            if (why) {
              state = FAILED;
              this.failures.set(name, why);
              c.failedNodes.push(name + ":" + why);
            }
          }
        }
        this.states[i] = state;
        c.cells[state]++;
      }
      c.unavailable = c.desired - c.available;
      c.revision = hash;
      c.paused = annotations[PAUSED] === "true";
      c.partition = annotations[PARTITION];
      c.waves = annotations[WAVES];
      c.waveSoak = annotations[WAVE_SOAK];
      c.held = resolvePartition(annotations[PARTITION], c.desired);
      c.maxFailedNodes = annotations[MAX_FAILED];
      c.autoRollback = annotations[AUTO_ROLLBACK] === "true";
      c.gateTripped = annotations[TRIPPED];
      c.gateStopped = hash !== "" && annotations[TRIPPED] === hash;
      this.counts = c;
      return c;
    }

    // Why node `i` has its state, for the tooltip.
    describe(i) {
      const name = this.names[i];
      if (name === undefined || !this.ds) return null;
      const state = this.states[i];
      const pod = this.firstPods && this.firstPods.get(name);
      const lines = [name, STATE_NAMES[state]];
      if (state === EXCLUDED) {
        lines.push(this.placement(name).reason);
        if (pod) lines.push("misscheduled: pod " + pod.metadata.name + " still runs");
        return lines;
      }
      if (state === MISSING) {
        lines.push("no daemon pod yet");
        return lines;
      }
      const labels = pod.metadata.labels || {};
      lines.push("pod " + pod.metadata.name + ", revision " + (labels[HASH_LABEL] || "?"));
      if (state === OLD) {
        lines.push("current revision " + this.counts.revision);
        const desiredIndex = this.desiredIndex(i);
        if (desiredIndex < this.counts.held) lines.push("held by partition " + this.counts.partition);
        else if (this.counts.gateStopped) lines.push("rollout stopped by the health gate");
        else if (this.counts.paused) lines.push("rollout paused");
      }
      if (state === FAILED) {
        lines.push("failed: " + this.failures.get(name) + " (counted by the health gate)");
        if (this.counts.gateStopped) lines.push("the health gate stopped this revision");
      }
      if (state === UNAVAILABLE) {
        const ready = readyCondition(pod);
        const phase = (pod.status && pod.status.phase) || "Pending";
        if (pod.metadata.deletionTimestamp) lines.push("terminating");
        else if (!ready || ready.status !== "True") {
          lines.push(phase + (ready && ready.reason ? ", " + ready.reason : ", not ready"));
        } else lines.push("ready, waiting minReadySeconds");
      }
      return lines;
    }

    // How many desired nodes come before node `i` (partitions hold the lowest names).
    desiredIndex(i) {
      let n = 0;
      for (let j = 0; j < i; j++) if (this.states[j] !== EXCLUDED) n++;
      return n;
    }
  }

  return { Fleet, STATE_NAMES, UPDATED, OLD, UNAVAILABLE, MISSING, EXCLUDED, FAILED };
})();
