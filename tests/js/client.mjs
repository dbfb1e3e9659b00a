// Drives a cluster with the official Kubernetes JavaScript client (@kubernetes/client-node) as
// an application would: the kubeconfig named by KUBECONFIG, as `pernode up` wrote it, loaded with
// `KubeConfig.loadFromDefault()`, and the typed APIs. Prints one JSON object on stdout, each
// step's result or the error the client raised, for tests/js_client.rs to check; exits non-zero
// only when the script itself breaks.
//
// Environment: KUBECONFIG (required), JS_NAMESPACE (default `js-client`), JS_NODES (the
// simulated nodes to create, comma-separated; default `js-node-1,js-node-2`).

import { PassThrough, Writable } from 'node:stream';

import {
  ApiException,
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  Exec,
  KubeConfig,
  Log,
  PatchStrategy,
  VersionApi,
  Watch,
  makeInformer,
  setHeaderOptions,
} from '@kubernetes/client-node';

const NAMESPACE = process.env.JS_NAMESPACE || 'js-client';
const NODES = (process.env.JS_NODES || 'js-node-1,js-node-2').split(',');
const DAEMONSET = 'js-agent';
const CONFIGMAP = 'js-settings';
// How long the pods of the patched template may take to run on every node.
const ROLLOUT_DEADLINE_MS = 90_000;

const results = {};

// What the client raised, in a form the Rust test can assert on: the HTTP code and the
// Status body for an ApiException, the message otherwise.
function describeError(err) {
  if (err instanceof ApiException) {
    let body = err.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        // Not JSON: keep the text.
      }
    }
    return { code: err.code, body };
  }
  return {
    message: String(err && err.message ? err.message : err),
    code: err && (err.statusCode ?? err.code),
  };
}

// Runs one step: its value under `results[name]`, or the error it raised.
async function step(name, run) {
  try {
    results[name] = { ok: true, value: await run() };
  } catch (err) {
    results[name] = { ok: false, error: describeError(err) };
  }
  return results[name];
}

// A KubeConfig for the same cluster and CA whose user is `user` (no credentials, or a token).
function kubeConfigAs(kc, user) {
  const cluster = kc.getCurrentCluster();
  const other = new KubeConfig();
  other.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'other', ...user }],
    contexts: [{ name: 'other', cluster: cluster.name, user: 'other' }],
    currentContext: 'other',
  });
  return other;
}

// Collects what a Log request streams until the server ends the response.
async function readLog(kc, pod, container, options) {
  const chunks = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  const finished = new Promise((resolve, reject) => {
    sink.on('finish', resolve);
    sink.on('error', reject);
  });
  await new Log(kc).log(NAMESPACE, pod, container, sink, options);
  await finished;
  return Buffer.concat(chunks).toString('utf8');
}

// An informer (the client's list-then-watch cache) of the namespace's ConfigMaps, recording
// each event as `add|update|delete:<name>:<data as JSON>`.
async function startConfigMapInformer(kc, core) {
  const events = [];
  const informer = makeInformer(kc, `/api/v1/namespaces/${NAMESPACE}/configmaps`, () =>
    core.listNamespacedConfigMap({ namespace: NAMESPACE }),
  );
  for (const kind of ['add', 'update', 'delete']) {
    informer.on(kind, (cm) =>
      events.push(`${kind}:${cm.metadata.name}:${JSON.stringify(cm.data ?? {})}`),
    );
  }
  informer.on('error', (err) => events.push(`error:${err}`));
  await informer.start();
  return { informer, events };
}

// Polls `check` every 50 ms until it returns something truthy or `ms` pass (then throws).
async function eventually(ms, what, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`not true within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Watches the DaemonSet's pods until every node runs one of template generation `generation`
// (Running), or the deadline passes. Returns what the watch saw.
function watchRollout(kc, generation) {
  return new Promise((resolve, reject) => {
    const seen = { events: 0, types: {}, running: {} };
    let controller;
    let settled = false;
    const finish = (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (controller) controller.abort();
      if (err) reject(err);
      else resolve(seen);
    };
    const timer = setTimeout(
      () =>
        finish(
          new Error(
            `pods of template generation ${generation} not Running on ${NODES.join(',')} ` +
              `within ${ROLLOUT_DEADLINE_MS} ms; saw ${JSON.stringify(seen)}`,
          ),
        ),
      ROLLOUT_DEADLINE_MS,
    );
    new Watch(kc)
      .watch(
        `/api/v1/namespaces/${NAMESPACE}/pods`,
        { labelSelector: `app=${DAEMONSET}` },
        (type, pod) => {
          seen.events += 1;
          seen.types[type] = (seen.types[type] || 0) + 1;
          const labels = pod.metadata?.labels || {};
          const node = pod.spec?.nodeName;
          if (
            type !== 'DELETED' &&
            !pod.metadata?.deletionTimestamp &&
            node &&
            labels['pod-template-generation'] === String(generation) &&
            pod.status?.phase === 'Running'
          ) {
            seen.running[node] = pod.metadata.name;
          }
          if (NODES.every((n) => seen.running[n])) finish();
        },
        (err) => {
          // The server ended the watch before the rollout was seen: an error either way.
          finish(err || new Error(`the watch ended early; saw ${JSON.stringify(seen)}`));
        },
      )
      .then((c) => {
        controller = c;
        if (settled) c.abort();
      }, finish);
  });
}

async function main() {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);

  await step('version', async () => (await kc.makeApiClient(VersionApi).getCode()).gitVersion);

  await step('listNamespaces', async () =>
    (await core.listNamespace()).items.map((ns) => ns.metadata.name),
  );

  await step('createNamespace', async () => {
    const ns = await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    return ns.status?.phase;
  });

  const configMaps = await startConfigMapInformer(kc, core);

  // Simulated nodes, as `pernode up --nodes N` makes them: pernode's simulator runs the pods
  // of every Node with this annotation.
  await step('createNodes', async () => {
    const names = [];
    for (const name of NODES) {
      const node = await core.createNode({
        body: {
          metadata: {
            name,
            labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux' },
            annotations: { 'pernode.io/simulated': 'true' },
          },
        },
      });
      names.push(node.metadata.name);
    }
    return names;
  });

  // The ServiceAccount controller makes `default` in every namespace; pods need it.
  await step('defaultServiceAccount', () =>
    eventually(30_000, 'the default ServiceAccount', async () => {
      try {
        const sa = await core.readNamespacedServiceAccount({
          name: 'default',
          namespace: NAMESPACE,
        });
        return sa.metadata.name;
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return null;
        throw err;
      }
    }),
  );

  await step('createConfigMap', async () => {
    const cm = await core.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: { metadata: { name: CONFIGMAP }, data: { level: 'info' } },
    });
    return { name: cm.metadata.name, uid: cm.metadata.uid };
  });

  await step('readConfigMap', async () => {
    const cm = await core.readNamespacedConfigMap({ name: CONFIGMAP, namespace: NAMESPACE });
    return { name: cm.metadata.name, data: cm.data, uid: cm.metadata.uid };
  });

  // Bad input: the client raises an ApiException carrying the server's Status.
  await step('createInvalidConfigMap', async () => {
    await core.createNamespacedConfigMap({
      namespace: NAMESPACE,
      body: { metadata: { name: 'Not_A_Name' } },
    });
    return 'created';
  });

  await step('createDaemonSet', async () => {
    const ds = await apps.createNamespacedDaemonSet({
      namespace: NAMESPACE,
      body: {
        apiVersion: 'apps/v1',
        kind: 'DaemonSet',
        metadata: { name: DAEMONSET },
        spec: {
          selector: { matchLabels: { app: DAEMONSET } },
          template: {
            metadata: { labels: { app: DAEMONSET } },
            spec: {
              containers: [
                {
                  name: 'agent',
                  image: 'busybox:1.36',
                  env: [
                    {
                      name: 'LEVEL',
                      valueFrom: { configMapKeyRef: { name: CONFIGMAP, key: 'level' } },
                    },
                  ],
                },
              ],
            },
          },
        },
      },
    });
    // The typed model turns RFC 3339 strings into Dates.
    return {
      generation: ds.metadata.generation,
      createdIsDate: ds.metadata.creationTimestamp instanceof Date,
      updateStrategy: ds.spec.updateStrategy?.type,
    };
  });

  await step('readDaemonSet', async () => {
    const ds = await apps.readNamespacedDaemonSet({ name: DAEMONSET, namespace: NAMESPACE });
    return {
      name: ds.metadata.name,
      image: ds.spec.template.spec.containers[0].image,
      revisionHistoryLimit: ds.spec.revisionHistoryLimit,
    };
  });

  await step('listDaemonSets', async () =>
    (await apps.listNamespacedDaemonSet({ namespace: NAMESPACE })).items.map(
      (ds) => ds.metadata.name,
    ),
  );

  // A strategic merge patch of the template: a new container image (merged by name) and a
  // label, which starts a rolling update to template generation 2.
  await step('patchDaemonSet', async () => {
    const ds = await apps.patchNamespacedDaemonSet(
      {
        name: DAEMONSET,
        namespace: NAMESPACE,
        body: {
          spec: {
            template: {
              metadata: { labels: { tier: 'node' } },
              spec: { containers: [{ name: 'agent', image: 'busybox:1.37' }] },
            },
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    const container = ds.spec.template.spec.containers[0];
    return {
      generation: ds.metadata.generation,
      image: container.image,
      env: container.env?.map((e) => e.name),
      labels: ds.spec.template.metadata.labels,
    };
  });

  // The client's default patch type is a JSON patch; a merge patch names its own.
  await step('jsonPatchConfigMap', async () => {
    const cm = await core.patchNamespacedConfigMap({
      name: CONFIGMAP,
      namespace: NAMESPACE,
      body: [{ op: 'replace', path: '/data/level', value: 'debug' }],
    });
    return cm.data;
  });
  await step('mergePatchConfigMap', async () => {
    const cm = await core.patchNamespacedConfigMap(
      { name: CONFIGMAP, namespace: NAMESPACE, body: { data: { format: 'json' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    return cm.data;
  });

  // The informer saw the create and both patches, in order, after its initial list.
  await step('informer', async () => {
    const last = `update:${CONFIGMAP}:${JSON.stringify({ format: 'json', level: 'debug' })}`;
    await eventually(10_000, `the informer sees ${last}`, () =>
      configMaps.events.includes(last),
    );
    configMaps.informer.stop();
    return configMaps.events.filter((e) => e.includes(`:${CONFIGMAP}:`));
  });

  await step('watchRollout', async () => {
    const seen = await watchRollout(kc, 2);
    return { nodes: Object.keys(seen.running).sort(), types: seen.types };
  });

  await step('daemonSetStatus', () =>
    eventually(30_000, 'the DaemonSet status counts the updated pods', async () => {
      const ds = await apps.readNamespacedDaemonSetStatus({
        name: DAEMONSET,
        namespace: NAMESPACE,
      });
      const s = ds.status;
      return (
        s.observedGeneration === 2 &&
        s.updatedNumberScheduled === NODES.length &&
        s.numberAvailable === NODES.length && {
          desiredNumberScheduled: s.desiredNumberScheduled,
          updatedNumberScheduled: s.updatedNumberScheduled,
          numberAvailable: s.numberAvailable,
          observedGeneration: s.observedGeneration,
        }
      );
    }),
  );

  const pods = await step('listPods', async () =>
    (
      await core.listNamespacedPod({
        namespace: NAMESPACE,
        labelSelector: `app=${DAEMONSET},pod-template-generation=2`,
        fieldSelector: 'status.phase=Running',
      })
    ).items.map((p) => ({ name: p.metadata.name, node: p.spec.nodeName })),
  );
  const podName = pods.ok && pods.value.length > 0 ? pods.value[0].name : 'missing';

  await step('log', async () => readLog(kc, podName, 'agent', { tailLines: 1 }));

  // pernode refuses exec to a simulated node with a 400 before upgrading the connection.
  await step('exec', async () => {
    const out = new PassThrough();
    await new Exec(kc).exec(NAMESPACE, podName, 'agent', ['true'], out, out, null, false);
    return 'connected';
  });

  // A custom resource through CustomObjectsApi, as operators written with this client use it.
  const widgets = { group: 'example.com', version: 'v1', namespace: NAMESPACE, plural: 'jswidgets' };
  await step('createCustomResourceDefinition', async () => {
    const crd = await kc.makeApiClient(ApiextensionsV1Api).createCustomResourceDefinition({
      body: {
        metadata: { name: 'jswidgets.example.com' },
        spec: {
          group: 'example.com',
          scope: 'Namespaced',
          names: { plural: 'jswidgets', singular: 'jswidget', kind: 'JsWidget' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: { type: 'object', properties: { size: { type: 'integer' } } },
                  },
                },
              },
            },
          ],
        },
      },
    });
    return crd.metadata.name;
  });
  const customObjects = kc.makeApiClient(CustomObjectsApi);
  await step('createCustomObject', async () => {
    const w = await customObjects.createNamespacedCustomObject({
      ...widgets,
      body: {
        apiVersion: 'example.com/v1',
        kind: 'JsWidget',
        metadata: { name: 'w1' },
        spec: { size: 1 },
      },
    });
    return w.spec;
  });
  await step('mergePatchCustomObject', async () => {
    const w = await customObjects.patchNamespacedCustomObject(
      { ...widgets, name: 'w1', body: { spec: { size: 2 } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    return w.spec;
  });
  // Custom resources take no strategic merge patch: a 415 naming what they take.
  await step('strategicPatchCustomObject', async () => {
    await customObjects.patchNamespacedCustomObject(
      { ...widgets, name: 'w1', body: { spec: { size: 3 } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    return 'patched';
  });
  // The definition enables no status subresource.
  await step('customObjectStatus', async () => {
    await customObjects.getNamespacedCustomObjectStatus({ ...widgets, name: 'w1' });
    return 'found';
  });
  await step('listCustomObjects', async () =>
    (await customObjects.listNamespacedCustomObject(widgets)).items.map((w) => [
      w.metadata.name,
      w.spec.size,
    ]),
  );
  await step('deleteCustomResourceDefinition', async () => {
    const crd = await kc
      .makeApiClient(ApiextensionsV1Api)
      .deleteCustomResourceDefinition({ name: 'jswidgets.example.com' });
    return crd.kind;
  });

  await step('noCredentials', async () => {
    await kubeConfigAs(kc, {}).makeApiClient(CoreV1Api).listNamespace();
    return 'listed';
  });
  await step('badToken', async () => {
    await kubeConfigAs(kc, { token: 'not-a-token' }).makeApiClient(CoreV1Api).listNamespace();
    return 'listed';
  });
  await step('noCredentialsWatch', async () => {
    return await new Promise((resolve, reject) => {
      new Watch(kubeConfigAs(kc, {}))
        .watch(`/api/v1/namespaces/${NAMESPACE}/pods`, {}, () => {}, (err) =>
          err ? reject(err) : resolve('ended'),
        )
        .catch(reject);
    });
  });

  await step('deleteDaemonSet', async () => {
    const status = await apps.deleteNamespacedDaemonSet({
      name: DAEMONSET,
      namespace: NAMESPACE,
      propagationPolicy: 'Background',
    });
    return status.kind ?? status.status;
  });
  await step('readDeletedDaemonSet', async () => {
    await apps.readNamespacedDaemonSet({ name: DAEMONSET, namespace: NAMESPACE });
    return 'found';
  });
  // The garbage collector deletes the pods and the simulated kubelets confirm it; the nodes
  // must stay until then, or the pods would wait for pod GC's orphan quarantine.
  await step('podsGone', () =>
    eventually(60_000, "the DaemonSet's pods are gone", async () => {
      const pods = await core.listNamespacedPod({
        namespace: NAMESPACE,
        labelSelector: `app=${DAEMONSET}`,
      });
      return pods.items.length === 0;
    }),
  );
  await step('deleteConfigMap', async () => {
    const status = await core.deleteNamespacedConfigMap({ name: CONFIGMAP, namespace: NAMESPACE });
    return status.kind ?? status.status;
  });
  await step('deleteNamespace', async () => {
    const ns = await core.deleteNamespace({ name: NAMESPACE });
    return ns.kind ?? ns.status;
  });
  await step('deleteNodes', async () => {
    const kinds = [];
    for (const name of NODES) {
      kinds.push((await core.deleteNode({ name })).kind);
    }
    return kinds;
  });
}

// Exits once the results are written: a connection a step left open (an exec the server
// upgraded, say) must not keep the script running.
let exitCode = 0;
try {
  await main();
} catch (err) {
  results.fatal = describeError(err);
  exitCode = 1;
}
process.stdout.write(`${JSON.stringify(results)}\n`, () => process.exit(exitCode));
