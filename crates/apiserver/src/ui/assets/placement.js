// Which nodes a DaemonSet should run on, as the controller decides it (upstream's
// NodeShouldRunDaemonPod, pernode's daemonset::placement): the template's nodeName, its
// nodeSelector, its required node affinity, then NoSchedule/NoExecute taints against the
// template's tolerations plus the ones every daemon pod gets (and a node-critical one's). The
// reason reads as the NodesExcluded condition counts it ("nodeSelector k=v", "taint
// k=v:NoSchedule not tolerated").
"use strict";

const Placement = (() => {
  const DEFAULT_TOLERATIONS = [
    ["node.kubernetes.io/not-ready", "NoExecute"],
    ["node.kubernetes.io/unreachable", "NoExecute"],
    ["node.kubernetes.io/disk-pressure", "NoSchedule"],
    ["node.kubernetes.io/memory-pressure", "NoSchedule"],
    ["node.kubernetes.io/pid-pressure", "NoSchedule"],
    ["node.kubernetes.io/unschedulable", "NoSchedule"],
  ];

  // The pod spec every node is judged against, prepared once per DaemonSet template.
  function judge(ds) {
    const spec = (ds.spec && ds.spec.template && ds.spec.template.spec) || {};
    const tolerations = (spec.tolerations || []).slice();
    const defaults = DEFAULT_TOLERATIONS.slice();
    if (spec.hostNetwork) defaults.push(["node.kubernetes.io/network-unavailable", "NoSchedule"]);
    // A node-critical DaemonSet's pods tolerate the gate's taint (daemonset::pods).
    const annotations = (ds.metadata && ds.metadata.annotations) || {};
    if (annotations["pernode.io/node-critical"] === "true") {
      defaults.push(["pernode.io/critical-daemons-not-ready", "NoSchedule"]);
    }
    for (const [key, effect] of defaults) tolerations.push({ key, operator: "Exists", effect });
    const selector = spec.nodeSelector || null;
    const required =
      spec.affinity &&
      spec.affinity.nodeAffinity &&
      spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;

    return function place(node) {
      const name = node.metadata.name;
      const labels = node.metadata.labels || {};
      if (spec.nodeName && spec.nodeName !== name) return excluded("nodeName " + spec.nodeName, false);
      if (selector) {
        for (const [k, v] of Object.entries(selector)) {
          if (labels[k] !== v) {
            const pairs = Object.entries(selector).map(([a, b]) => a + "=" + b);
            return excluded("nodeSelector " + pairs.join(","), false);
          }
        }
      }
      if (required && !matchesTerms(required.nodeSelectorTerms || [], name, labels)) {
        return excluded("required node affinity", false);
      }
      const taints = (node.spec && node.spec.taints) || [];
      const blocking = untolerated(taints, tolerations, (e) => e === "NoSchedule" || e === "NoExecute");
      if (!blocking) return { shouldRun: true, shouldContinue: true, reason: "" };
      const evicted = untolerated(taints, tolerations, (e) => e === "NoExecute");
      const value = blocking.value ? "=" + blocking.value : "";
      return excluded("taint " + blocking.key + value + ":" + blocking.effect + " not tolerated", !evicted);
    };
  }

  function excluded(reason, shouldContinue) {
    return { shouldRun: false, shouldContinue, reason };
  }

  function untolerated(taints, tolerations, effects) {
    return taints.find((t) => effects(t.effect) && !tolerations.some((tol) => tolerates(tol, t)));
  }

  // Upstream's Toleration.ToleratesTaint.
  function tolerates(tol, taint) {
    if (tol.effect && tol.effect !== taint.effect) return false;
    if (tol.key && tol.key !== taint.key) return false;
    const op = tol.operator || "Equal";
    if (op === "Exists") return true;
    if (op === "Equal") return (tol.value || "") === (taint.value || "");
    return false;
  }

  // Terms are ORed; a term's requirements ANDed; a term with none matches nothing.
  function matchesTerms(terms, name, labels) {
    return terms.some((term) => {
      const exprs = term.matchExpressions || [];
      const fields = term.matchFields || [];
      if (exprs.length === 0 && fields.length === 0) return false;
      return (
        exprs.every((r) => requirement(r, labels[r.key], r.key in labels)) &&
        fields.every((r) => r.key === "metadata.name" && requirement(r, name, true))
      );
    });
  }

  function requirement(r, value, present) {
    const values = r.values || [];
    switch (r.operator) {
      case "In":
        return present && values.includes(value);
      case "NotIn":
        return !present || !values.includes(value);
      case "Exists":
        return present;
      case "DoesNotExist":
        return !present;
      case "Gt":
      case "Lt": {
        if (!present || values.length !== 1) return false;
        const have = Number.parseInt(value, 10);
        const want = Number.parseInt(values[0], 10);
        if (Number.isNaN(have) || Number.isNaN(want)) return false;
        return r.operator === "Gt" ? have > want : have < want;
      }
      default:
        return false;
    }
  }

  return { judge };
})();
