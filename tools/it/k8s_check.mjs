// k8s_check.mjs - check rendered Kubernetes manifests (kubectl kustomize
// output, or plain YAML files): every object against the Kubernetes
// OpenAPI schema (npm's kubernetes-models: types, required fields, enums),
// then sheaf's own rules, which a schema cannot say:
//
//   * pods run as non-root (runAsNonRoot, a numeric runAsUser) with a
//     read-only root file system, no privilege escalation, capabilities
//     dropped, and requests and limits of cpu and memory, limits >= requests;
//   * a sheafd container's memory request is SHEAF_WORKERS x
//     SHEAF_MEMORY_MB + 128 MiB (the budget of its worker processes and the
//     supervisor), and its limit is above it;
//   * terminationGracePeriodSeconds leaves SHEAF_GRACE_S plus the preStop
//     pause plus 5 s;
//   * the API (args --role all) has readiness /readyz and liveness /healthz;
//   * selectors (workloads, Services, PDBs) select some pod template, every
//     worker and API Deployment has a PodDisruptionBudget;
//   * ConfigMaps, Secrets and PersistentVolumeClaims that pods name exist
//     (with --partial, objects outside the files are allowed: examples).
//
//   node k8s_check.mjs [--partial] FILE...   ("-" reads stdin)
// Prints "ok: N objects" or one line per problem, and exits 1.
import fs from 'node:fs';
import YAML from 'yaml';

const args = process.argv.slice(2);
const partial = args[0] === '--partial';
const files = partial ? args.slice(1) : args;
const problems = [];
const bad = (where, what) => problems.push(`${where}: ${what}`);

const docs = [];
for (const f of files) {
  const text = fs.readFileSync(f === '-' ? 0 : f, 'utf8');
  for (const d of YAML.parseAllDocuments(text)) {
    if (d.errors.length) bad(f, `YAML: ${d.errors[0].message}`);
    const o = d.toJS();
    if (o !== null && o !== undefined) docs.push(o);
  }
}

// The module of kubernetes-models holding an apiVersion's classes
// ("v1", "apps/v1", "policy/v1", "autoscaling/v2").
function modelModule(apiVersion) {
  return `kubernetes-models/${apiVersion}`;
}

function name(o) {
  return `${o.kind}/${o.metadata && o.metadata.name}`;
}

// Kubernetes quantities: memory in bytes, cpu in millicores.
function bytes(q) {
  const m = /^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  if (!m) return NaN;
  const mult = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3,
                 M: 1e6, G: 1e9, T: 1e12 }[m[2]] || 1;
  return Number(m[1]) * mult;
}
function millicores(q) {
  const s = String(q);
  return s.endsWith('m') ? Number(s.slice(0, -1)) : Number(s) * 1000;
}

for (const o of docs) {
  if (!o.apiVersion || !o.kind) {
    bad('?', 'an object without apiVersion or kind');
    continue;
  }
  let mod;
  try {
    mod = await import(modelModule(o.apiVersion));
  } catch (e) {
    bad(name(o), `unknown apiVersion ${o.apiVersion}`);
    continue;
  }
  const Cls = mod[o.kind];
  if (!Cls) {
    bad(name(o), `unknown kind ${o.kind} in ${o.apiVersion}`);
    continue;
  }
  try {
    new Cls(o).validate();
  } catch (e) {
    bad(name(o), `schema: ${e.message}`);
  }
}

const byKind = (k) => docs.filter((o) => o.kind === k);
const exists = (k, n) => docs.some((o) => o.kind === k && o.metadata
                                   && o.metadata.name === n);
const configMaps = Object.fromEntries(byKind('ConfigMap').map(
  (c) => [c.metadata.name, c.data || {}]));
const workloads = docs.filter((o) => ['Deployment', 'StatefulSet',
  'DaemonSet', 'Job'].includes(o.kind));
const templates = workloads.map((w) => (w.spec && w.spec.template) || {});

// The value of an environment variable of a container: env, then envFrom
// ConfigMaps.
function envOf(c, key) {
  for (const e of c.env || []) if (e.name === key) return e.value;
  for (const ef of c.envFrom || []) {
    const cm = ef.configMapRef && configMaps[ef.configMapRef.name];
    if (cm && key in cm) return cm[key];
  }
  return undefined;
}

function matches(sel, labels) {
  return Object.entries(sel || {}).every(([k, v]) => (labels || {})[k] === v);
}

for (const w of workloads) {
  const where = name(w);
  const t = (w.spec && w.spec.template) || {};
  const pod = t.spec || {};
  const labels = (t.metadata && t.metadata.labels) || {};
  if (w.spec && w.spec.selector
      && !matches(w.spec.selector.matchLabels, labels)) {
    bad(where, 'its selector does not select its pod template');
  }
  const psc = pod.securityContext || {};
  if (psc.runAsNonRoot !== true) bad(where, 'runAsNonRoot is not true');
  if (!Number.isInteger(psc.runAsUser) || psc.runAsUser === 0) {
    bad(where, 'no numeric non-root runAsUser');
  }
  for (const c of [...(pod.initContainers || []), ...(pod.containers || [])]) {
    const cw = `${where} container ${c.name}`;
    const sc = c.securityContext || {};
    if (sc.readOnlyRootFilesystem !== true) {
      bad(cw, 'readOnlyRootFilesystem is not true');
    }
    if (sc.allowPrivilegeEscalation !== false) {
      bad(cw, 'allowPrivilegeEscalation is not false');
    }
    if (!(sc.capabilities && (sc.capabilities.drop || []).includes('ALL'))) {
      bad(cw, 'capabilities are not dropped (drop: [ALL])');
    }
    const r = c.resources || {};
    for (const kind of ['requests', 'limits']) {
      for (const res of ['cpu', 'memory']) {
        if (!(r[kind] && r[kind][res] !== undefined)) {
          bad(cw, `no ${res} in resources.${kind}`);
        }
      }
    }
    if (r.requests && r.limits) {
      if (bytes(r.limits.memory) < bytes(r.requests.memory)) {
        bad(cw, 'memory limit below the request');
      }
      if (millicores(r.limits.cpu) < millicores(r.requests.cpu)) {
        bad(cw, 'cpu limit below the request');
      }
    }
    for (const ef of c.envFrom || []) {
      if (ef.configMapRef && !exists('ConfigMap', ef.configMapRef.name)
          && !partial) bad(cw, `no ConfigMap ${ef.configMapRef.name}`);
      if (ef.secretRef && !exists('Secret', ef.secretRef.name) && !partial) {
        bad(cw, `no Secret ${ef.secretRef.name}`);
      }
    }
    const isSheafd = (c.image || '').split(':')[0].endsWith('sheaf');
    if (!isSheafd) continue;
    const workers = Number(envOf(c, 'SHEAF_WORKERS'));
    const memMb = Number(envOf(c, 'SHEAF_MEMORY_MB'));
    if (!(workers >= 1) || !(memMb >= 16)) {
      bad(cw, 'SHEAF_WORKERS and SHEAF_MEMORY_MB must be set');
    } else if (r.requests && r.limits) {
      const want = (workers * memMb + 128) * 2 ** 20;
      if (bytes(r.requests.memory) !== want) {
        bad(cw, `memory request ${r.requests.memory} is not SHEAF_WORKERS `
            + `x SHEAF_MEMORY_MB + 128Mi = ${want / 2 ** 20}Mi`);
      }
      if (!(bytes(r.limits.memory) > want)) {
        bad(cw, 'memory limit must be above the workers\' budget');
      }
    }
    const grace = Number(envOf(c, 'SHEAF_GRACE_S') || 30);
    const pre = c.lifecycle && c.lifecycle.preStop && c.lifecycle.preStop.exec
      ? Number((c.lifecycle.preStop.exec.command || [])[1]) || 0 : 0;
    const term = pod.terminationGracePeriodSeconds ?? 30;
    if (term < grace + pre + 5) {
      bad(cw, `terminationGracePeriodSeconds ${term} leaves less than `
          + `SHEAF_GRACE_S ${grace} + preStop ${pre} + 5 s`);
    }
    const role = (c.args || [])[(c.args || []).indexOf('--role') + 1];
    if ((c.args || []).indexOf('--role') < 0 || role === 'all') {
      const rp = c.readinessProbe && c.readinessProbe.httpGet;
      const lp = c.livenessProbe && c.livenessProbe.httpGet;
      if (!rp || rp.path !== '/readyz') bad(cw, 'no readiness probe /readyz');
      if (!lp || lp.path !== '/healthz') bad(cw, 'no liveness probe /healthz');
    }
    const covered = byKind('PodDisruptionBudget').some(
      (p) => p.spec && p.spec.selector
             && matches(p.spec.selector.matchLabels, labels));
    if (!covered && !partial) bad(where, 'no PodDisruptionBudget selects it');
  }
  for (const v of pod.volumes || []) {
    if (partial) continue;
    if (v.secret && !exists('Secret', v.secret.secretName)) {
      bad(where, `no Secret ${v.secret.secretName}`);
    }
    if (v.configMap && !exists('ConfigMap', v.configMap.name)) {
      bad(where, `no ConfigMap ${v.configMap.name}`);
    }
    if (v.persistentVolumeClaim
        && !exists('PersistentVolumeClaim', v.persistentVolumeClaim.claimName)) {
      bad(where, `no PersistentVolumeClaim ${v.persistentVolumeClaim.claimName}`);
    }
  }
}

for (const o of [...byKind('Service'), ...byKind('PodDisruptionBudget')]) {
  const sel = o.kind === 'Service' ? o.spec && o.spec.selector
    : o.spec && o.spec.selector && o.spec.selector.matchLabels;
  if (!sel || Object.keys(sel).length === 0) {
    bad(name(o), 'no selector');
  } else if (!templates.some((t) => matches(sel, t.metadata
                                            && t.metadata.labels))
             && !partial) {
    bad(name(o), 'its selector selects no pod template');
  }
}

if (problems.length) {
  for (const p of problems) process.stdout.write(`${p}\n`);
  process.exit(1);
}
process.stdout.write(`ok: ${docs.length} objects\n`);
