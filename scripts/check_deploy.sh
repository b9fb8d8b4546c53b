#!/usr/bin/env bash
# make check-deploy: checks every YAML file under deploy/ without a cluster.
#  1. Parses each file (every document; duplicate keys are errors).
#  2. Compose files: services have an image or build, depends_on/volumes refer
#     to what exists, healthchecks are exec-form, ports are quoted strings.
#  3. Kubernetes objects (StatefulSet, Deployment, Pod, Service, ConfigMap,
#     Secret, PersistentVolumeClaim; deploy/podman holds the podman kube play
#     variant): apiVersion/kind/metadata.name, kind known for its
#     apiVersion, no unknown field names (a table of the fields of the kinds
#     used here, from the Kubernetes API reference), and the references
#     between objects: selector vs template labels, serviceName, Service
#     targetPort vs container ports, probes on a container port, volumeMounts
#     vs volumes/volumeClaimTemplates, ConfigMap/Secret names, $(VAR) in args
#     defined by the ConfigMap, resource requests <= limits; kustomization
#     resources exist and list every manifest in the folder.
#  4. Schema: each object is validated against the Kubernetes OpenAPI schema
#     (types, enums, required fields) by the npm package kubernetes-models,
#     which validates offline once installed (installed on first use into
#     ~/.cache/debias; skipped with a note when npm cannot install it).
# Installs python3-yaml if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
KM_VERSION=5.1.0
KM_DIR=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/debias/kubernetes-models-$KM_VERSION

if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "check-deploy: installing python3-yaml" >&2
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3-yaml >/dev/null
fi

OBJECTS=$(mktemp /tmp/check-deploy.XXXXXX.json)
trap 'rm -f "$OBJECTS"' EXIT

python3 - "$OBJECTS" <<'PYEOF'
import glob, json, os, re, sys
import yaml

errors = []
def err(where, msg):
    errors.append(f"{where}: {msg}")

class StrictLoader(yaml.SafeLoader):
    pass
def construct_mapping(loader, node, deep=False):
    keys = set()
    for k, _ in node.value:
        if k.tag == 'tag:yaml.org,2002:merge':
            continue
        key = loader.construct_object(k, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", k.start_mark)
        keys.add(key)
    loader.flatten_mapping(node)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)
StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)

files = sorted(glob.glob('deploy/**/*.yaml', recursive=True) +
               glob.glob('deploy/**/*.yml', recursive=True))
if not files:
    print("check-deploy: no YAML under deploy/", file=sys.stderr); sys.exit(1)
docs = {}  # file -> [doc]
for f in files:
    try:
        docs[f] = [d for d in yaml.load_all(open(f), Loader=StrictLoader) if d is not None]
    except yaml.YAMLError as e:
        err(f, f"does not parse: {e}")
if errors:
    print("\n".join(errors), file=sys.stderr); sys.exit(1)

# ---------------------------------------------------------------- compose
def check_compose(f, d):
    services = d.get('services')
    if not isinstance(services, dict) or not services:
        return err(f, "no services")
    allowed_top = {'name', 'services', 'volumes', 'networks', 'configs', 'secrets', 'version', 'include'}
    for k in d:
        if k not in allowed_top and not k.startswith('x-'):
            err(f, f"unknown top-level key {k!r}")
    volumes = set((d.get('volumes') or {}).keys())
    for name, s in services.items():
        w = f"{f}: services.{name}"
        if 'image' not in s and 'build' not in s:
            err(w, "needs image or build")
        deps = s.get('depends_on') or {}
        for dep in (deps if isinstance(deps, (list, dict)) else []):
            if dep not in services:
                err(w, f"depends_on {dep!r} is not a service")
            elif isinstance(deps, dict):
                cond = deps[dep].get('condition', 'service_started')
                if cond not in ('service_started', 'service_healthy', 'service_completed_successfully'):
                    err(w, f"depends_on.{dep}.condition {cond!r} unknown")
                if cond == 'service_healthy' and 'healthcheck' not in services[dep]:
                    err(w, f"waits for {dep} to be healthy but {dep} has no healthcheck")
        for v in s.get('volumes') or []:
            src = v.split(':')[0] if isinstance(v, str) else v.get('source')
            if src and not src.startswith(('.', '/', '~')) and src not in volumes:
                err(w, f"volume {src!r} is not declared under volumes:")
        for p in s.get('ports') or []:
            if not isinstance(p, (str, dict)):
                err(w, f"port {p!r} must be a quoted string (YAML reads a:b as base 60)")
        hc = s.get('healthcheck')
        if hc and not hc.get('disable'):
            t = hc.get('test')
            if not (isinstance(t, list) and t and t[0] in ('CMD', 'CMD-SHELL', 'NONE')):
                err(w, "healthcheck.test must be a list starting with CMD or CMD-SHELL")
            for k in ('interval', 'timeout', 'start_period'):
                if k in hc and not re.fullmatch(r'(\d+(ms|s|m|h))+', str(hc[k])):
                    err(w, f"healthcheck.{k} {hc[k]!r} is not a duration")
        if 'stop_grace_period' in s and not re.fullmatch(r'(\d+(ms|s|m|h))+', str(s['stop_grace_period'])):
            err(w, "stop_grace_period is not a duration")

# ---------------------------------------------------------------- kubernetes
# Field names of the kinds used here (Kubernetes API reference, v1.27+).
# A value None means "free-form map"; a str names another entry.
META = {'name': 0, 'namespace': 0, 'labels': None, 'annotations': None, 'generateName': 0}
FIELDS = {
    'ObjectMeta': META,
    'StatefulSet': {'apiVersion': 0, 'kind': 0, 'metadata': 'ObjectMeta', 'spec': 'StatefulSetSpec'},
    'StatefulSetSpec': {'serviceName': 0, 'replicas': 0, 'podManagementPolicy': 0,
                        'updateStrategy': None, 'selector': 'LabelSelector', 'template': 'PodTemplate',
                        'volumeClaimTemplates': ['PVC'], 'minReadySeconds': 0,
                        'revisionHistoryLimit': 0, 'persistentVolumeClaimRetentionPolicy': None,
                        'ordinals': None},
    'Deployment': {'apiVersion': 0, 'kind': 0, 'metadata': 'ObjectMeta', 'spec': 'DeploymentSpec'},
    'DeploymentSpec': {'replicas': 0, 'selector': 'LabelSelector', 'template': 'PodTemplate',
                       'strategy': {'type': 0, 'rollingUpdate': {'maxUnavailable': 0,
                                                                 'maxSurge': 0}},
                       'minReadySeconds': 0, 'revisionHistoryLimit': 0,
                       'progressDeadlineSeconds': 0, 'paused': 0},
    'Pod': {'apiVersion': 0, 'kind': 0, 'metadata': 'ObjectMeta', 'spec': 'PodSpec'},
    'LabelSelector': {'matchLabels': None, 'matchExpressions': None},
    'PodTemplate': {'metadata': 'ObjectMeta', 'spec': 'PodSpec'},
    'PodSpec': {'containers': ['Container'], 'initContainers': ['Container'], 'volumes': ['Volume'],
                'securityContext': 'PodSecurityContext', 'terminationGracePeriodSeconds': 0,
                'serviceAccountName': 0, 'nodeSelector': None, 'affinity': None, 'tolerations': None,
                'topologySpreadConstraints': None, 'priorityClassName': 0, 'imagePullSecrets': None,
                'automountServiceAccountToken': 0, 'enableServiceLinks': 0},
    'PodSecurityContext': {'runAsNonRoot': 0, 'runAsUser': 0, 'runAsGroup': 0, 'fsGroup': 0,
                           'fsGroupChangePolicy': 0, 'seccompProfile': None, 'supplementalGroups': 0},
    'Container': {'name': 0, 'image': 0, 'imagePullPolicy': 0, 'command': 0, 'args': 0, 'env': None,
                  'envFrom': ['EnvFrom'], 'ports': ['ContainerPort'], 'startupProbe': 'Probe',
                  'readinessProbe': 'Probe', 'livenessProbe': 'Probe', 'resources': 'Resources',
                  'securityContext': 'SecurityContext', 'volumeMounts': ['VolumeMount'],
                  'workingDir': 0, 'lifecycle': None},
    'EnvFrom': {'configMapRef': {'name': 0, 'optional': 0}, 'secretRef': {'name': 0, 'optional': 0},
                'prefix': 0},
    'ContainerPort': {'name': 0, 'containerPort': 0, 'protocol': 0, 'hostPort': 0, 'hostIP': 0},
    'Probe': {'grpc': {'port': 0, 'service': 0}, 'httpGet': None, 'tcpSocket': None, 'exec': None,
              'initialDelaySeconds': 0, 'periodSeconds': 0, 'timeoutSeconds': 0,
              'failureThreshold': 0, 'successThreshold': 0, 'terminationGracePeriodSeconds': 0},
    'Resources': {'requests': None, 'limits': None},
    'SecurityContext': {'allowPrivilegeEscalation': 0, 'readOnlyRootFilesystem': 0,
                        'capabilities': {'drop': 0, 'add': 0}, 'runAsNonRoot': 0, 'runAsUser': 0,
                        'runAsGroup': 0, 'privileged': 0, 'seccompProfile': None},
    'VolumeMount': {'name': 0, 'mountPath': 0, 'readOnly': 0, 'subPath': 0},
    'Volume': {'name': 0, 'secret': {'secretName': 0, 'defaultMode': 0, 'optional': 0, 'items': None},
               'configMap': {'name': 0, 'items': None, 'defaultMode': 0, 'optional': 0},
               'emptyDir': None,
               'persistentVolumeClaim': {'claimName': 0, 'readOnly': 0}},
    'PVC': {'apiVersion': 0, 'kind': 0, 'metadata': 'ObjectMeta', 'spec': {
        'accessModes': 0, 'resources': 'Resources', 'storageClassName': 0, 'volumeMode': 0,
        'selector': None}},
    'Service': {'apiVersion': 0, 'kind': 0, 'metadata': 'ObjectMeta', 'spec': {
        'type': 0, 'selector': None, 'ports': ['ServicePort'], 'clusterIP': 0,
        'publishNotReadyAddresses': 0, 'sessionAffinity': 0, 'internalTrafficPolicy': 0}},
    'ServicePort': {'name': 0, 'port': 0, 'targetPort': 0, 'protocol': 0, 'appProtocol': 0,
                    'nodePort': 0},
    'ConfigMap': {'apiVersion': 0, 'kind': 0, 'metadata': 'ObjectMeta', 'data': None,
                  'binaryData': None, 'immutable': 0},
    'Secret': {'apiVersion': 0, 'kind': 0, 'metadata': 'ObjectMeta', 'type': 0, 'data': None,
               'stringData': None, 'immutable': 0},
    'Kustomization': {'apiVersion': 0, 'kind': 0, 'resources': 0, 'images': None, 'labels': None,
                      'commonLabels': None, 'namespace': 0, 'namePrefix': 0, 'patches': None,
                      'configMapGenerator': None, 'secretGenerator': None, 'components': 0},
}
FIELDS['PersistentVolumeClaim'] = FIELDS['PVC']
API = {'StatefulSet': 'apps/v1', 'Deployment': 'apps/v1', 'Pod': 'v1',
       'PersistentVolumeClaim': 'v1', 'Service': 'v1', 'ConfigMap': 'v1', 'Secret': 'v1',
       'Kustomization': 'kustomize.config.k8s.io/v1beta1'}

def check_fields(where, obj, spec):
    if spec == 0 or spec is None:
        return
    if isinstance(spec, str):
        spec = FIELDS[spec]
    if isinstance(spec, list):
        if not isinstance(obj, list):
            return err(where, "must be a list")
        for i, o in enumerate(obj):
            check_fields(f"{where}[{i}]", o, spec[0])
        return
    if not isinstance(obj, dict):
        return err(where, "must be a mapping")
    for k, v in obj.items():
        if k not in spec:
            err(where, f"unknown field {k!r} (known: {', '.join(sorted(spec))})")
        else:
            check_fields(f"{where}.{k}", v, spec[k])

def quantity(q):
    m = re.fullmatch(r'(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?', str(q))
    if not m:
        return None
    mult = {None: 1, 'm': 1e-3, 'k': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12,
            'Ki': 2**10, 'Mi': 2**20, 'Gi': 2**30, 'Ti': 2**40}[m.group(2)]
    return float(m.group(1)) * mult

k8s = []  # (file, doc)
for f, ds in docs.items():
    for d in ds:
        if not isinstance(d, dict):
            err(f, "a document is not a mapping"); continue
        if 'services' in d:
            check_compose(f, d)
        elif 'kind' in d or 'apiVersion' in d:
            k8s.append((f, d))
        else:
            err(f, "neither a compose file nor a Kubernetes object")

by_kind = {}
for f, d in k8s:
    kind, api = d.get('kind'), d.get('apiVersion')
    name = (d.get('metadata') or {}).get('name')
    w = f"{f}: {kind}/{name}"
    if kind not in API:
        err(w, f"kind {kind!r} not checked here (known: {', '.join(API)})"); continue
    if api != API[kind]:
        err(w, f"apiVersion {api!r}, expected {API[kind]!r}")
    if kind != 'Kustomization':
        if not name or not re.fullmatch(r'[a-z0-9]([-a-z0-9]*[a-z0-9])?', name) or len(name) > 63:
            err(w, "metadata.name missing or not a DNS-1123 label")
        by_kind.setdefault(kind, {})[name] = (f, d)
    check_fields(w, d, kind)

cms = by_kind.get('ConfigMap', {})
secrets = by_kind.get('Secret', {})
services = by_kind.get('Service', {})
pvcs = by_kind.get('PersistentVolumeClaim', {})

def pod_template(kind, d):
    """(pod labels, pod spec) of a workload."""
    if kind == 'Pod':
        return (d.get('metadata') or {}).get('labels') or {}, d.get('spec') or {}
    tmpl = (d.get('spec') or {}).get('template', {})
    return (tmpl.get('metadata') or {}).get('labels') or {}, tmpl.get('spec') or {}

WORKLOADS = ('StatefulSet', 'Deployment', 'Pod')
workloads = [(kind, name, f, d) for kind in WORKLOADS
             for name, (f, d) in by_kind.get(kind, {}).items()]
for kind, name, f, d in workloads:
    w = f"{f}: {kind}/{name}"
    spec = d.get('spec', {})
    labels, pod = pod_template(kind, d)
    if kind != 'Pod':
        sel = (spec.get('selector') or {}).get('matchLabels') or {}
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            err(w, "selector.matchLabels must be non-empty and match the template labels")
    if kind == 'StatefulSet':
        if spec.get('serviceName') not in services:
            err(w, f"serviceName {spec.get('serviceName')!r} is not a Service here")
        elif (services[spec['serviceName']][1].get('spec') or {}).get('clusterIP') != 'None':
            err(w, f"serviceName {spec['serviceName']!r} should be a headless Service (clusterIP: None)")
    vols = {v['name']: v for v in pod.get('volumes') or []}
    for v in vols.values():
        if 'configMap' in v and v['configMap'].get('name') not in cms:
            err(w, f"volume {v['name']} refers to ConfigMap {v['configMap'].get('name')!r}, not defined here")
        if 'persistentVolumeClaim' in v and v['persistentVolumeClaim'].get('claimName') not in pvcs:
            err(w, f"volume {v['name']} refers to PersistentVolumeClaim "
                   f"{v['persistentVolumeClaim'].get('claimName')!r}, not defined here")
    claims = {c['metadata']['name'] for c in spec.get('volumeClaimTemplates') or []}
    for c in spec.get('volumeClaimTemplates') or []:
        if not (c.get('spec', {}).get('resources', {}).get('requests', {}).get('storage')):
            err(w, f"volumeClaimTemplate {c['metadata']['name']} has no storage request")
    for v in vols.values():
        if 'secret' in v and v['secret'].get('secretName') not in secrets:
            err(w, f"volume {v['name']} refers to Secret {v['secret'].get('secretName')!r}, not defined here")
    if not pod.get('containers'):
        err(w, "no containers")
    for c in pod.get('containers') or []:
        cw = f"{w} container {c.get('name')}"
        ports = {p['containerPort']: p for p in c.get('ports') or []}
        port_names = {p.get('name') for p in ports.values()}
        for probe in ('startupProbe', 'readinessProbe', 'livenessProbe'):
            p = c.get(probe)
            # A bare Pod (podman kube play) has nothing to act on probes.
            if probe != 'startupProbe' and not p and kind != 'Pod':
                err(cw, f"no {probe}")
            if p and 'httpGet' in p and p['httpGet'].get('port') not in ports and \
                    p['httpGet'].get('port') not in port_names:
                err(cw, f"{probe}.httpGet.port {p['httpGet'].get('port')!r} is not a container port")
            if p and 'grpc' in p:
                port = p['grpc'].get('port')
                if not isinstance(port, int):
                    err(cw, f"{probe}.grpc.port must be a number (named ports are not allowed)")
                elif port not in ports:
                    err(cw, f"{probe}.grpc.port {port} is not a containerPort ({sorted(ports)})")
        for mnt in c.get('volumeMounts') or []:
            if mnt['name'] not in vols and mnt['name'] not in claims:
                err(cw, f"volumeMount {mnt['name']} has no volume or volumeClaimTemplate")
        if kind == 'StatefulSet' and not any(m['mountPath'] == '/var/lib/debias' and
                                             m['name'] in claims
                                             for m in c.get('volumeMounts') or []):
            err(cw, "/var/lib/debias must be mounted from a volumeClaimTemplate")
        if kind != 'StatefulSet' and c.get('image', '').split(':')[0].endswith('debias') and \
                not any(m['mountPath'] == '/var/lib/debias' for m in c.get('volumeMounts') or []):
            err(cw, "debiasd's store /var/lib/debias must be mounted (the root is read-only)")
        env_names = {e['name'] for e in c.get('env') or []}
        for ef in c.get('envFrom') or []:
            ref = ef.get('configMapRef', {}).get('name')
            if ref is not None:
                if ref not in cms:
                    err(cw, f"envFrom ConfigMap {ref!r} is not defined here")
                else:
                    env_names |= set((cms[ref][1].get('data') or {}).keys())
        for a in (c.get('args') or []) + (c.get('command') or []):
            for var in re.findall(r'\$\((\w+)\)', str(a)):
                if var not in env_names:
                    err(cw, f"argument {a!r} uses $({var}), which no env/ConfigMap defines")
        res = c.get('resources') or {}
        for r in ('cpu', 'memory'):
            req, lim = (res.get('requests') or {}).get(r), (res.get('limits') or {}).get(r)
            if req is None and kind != 'Pod':
                err(cw, f"no resources.requests.{r}")
            for q in (req, lim):
                if q is not None and quantity(q) is None:
                    err(cw, f"resources {r}={q!r} is not a quantity")
            if req is not None and lim is not None and quantity(req) and quantity(lim) and quantity(req) > quantity(lim):
                err(cw, f"resources.requests.{r} {req} exceeds the limit {lim}")
    for sname, (sf, s) in services.items():
        ssel = (s.get('spec') or {}).get('selector') or {}
        if ssel and all(labels.get(k) == v for k, v in ssel.items()):
            for p in s['spec'].get('ports') or []:
                tp = p.get('targetPort', p.get('port'))
                names = {pp.get('name') for c in pod.get('containers') or [] for pp in c.get('ports') or []}
                nums = {pp['containerPort'] for c in pod.get('containers') or [] for pp in c.get('ports') or []}
                if tp not in names and tp not in nums:
                    err(f"{sf}: Service/{sname}", f"targetPort {tp!r} is not a port of {kind}/{name}")
for sname, (sf, s) in services.items():
    ssel = (s.get('spec') or {}).get('selector') or {}
    if not any(all(pod_template(kind, d)[0].get(k) == v for k, v in ssel.items())
               for kind, _, _, d in workloads):
        err(f"{sf}: Service/{sname}", "selector matches no pod template here")
# The headless Service of per-call balancing must select ready pods only.
for sname, (sf, s) in services.items():
    sp = s.get('spec') or {}
    if sp.get('clusterIP') == 'None' and 'scoring' in sname and sp.get('publishNotReadyAddresses'):
        err(f"{sf}: Service/{sname}", "clients balance over its addresses: not-ready replicas "
                                      "(warming up) must not be published")

for f, d in k8s:
    if d.get('kind') != 'Kustomization':
        continue
    base = os.path.dirname(f)
    listed = set()
    for r in d.get('resources') or []:
        p = os.path.normpath(os.path.join(base, r))
        listed.add(p)
        if not os.path.exists(p):
            err(f, f"resource {r} does not exist")
    for other in glob.glob(os.path.join(base, '*.yaml')):
        if os.path.normpath(other) not in listed and os.path.basename(other) not in ('kustomization.yaml',):
            err(f, f"{os.path.basename(other)} is in the folder but not in resources")
    images = {i['name'] for i in d.get('images') or []}
    for kind, _, sf, sd in workloads:
        if os.path.dirname(sf) == base:
            for c in pod_template(kind, sd)[1]['containers']:
                if c['image'].split(':')[0] not in images:
                    err(f, f"container image {c['image']!r} has no images: entry")

if errors:
    print("\n".join("check-deploy: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
json.dump([{'file': f, 'object': d} for f, d in k8s if d.get('kind') != 'Kustomization'],
          open(sys.argv[1], 'w'))
print(f"check-deploy: {len(files)} YAML files parse; compose and {len(k8s)} Kubernetes "
      f"objects pass the field and reference checks")
PYEOF

# Schema validation (types, enums, required fields) with kubernetes-models.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "check-deploy: schema validation skipped (no node/npm)"
  exit 0
fi
if [[ ! -f $KM_DIR/node_modules/kubernetes-models/package.json ]]; then
  mkdir -p "$KM_DIR"
  if ! (cd "$KM_DIR" && echo '{"private": true}' >package.json &&
        timeout 300 npm install --no-audit --no-fund --silent "kubernetes-models@$KM_VERSION" >/dev/null 2>&1); then
    rm -rf "$KM_DIR"
    echo "check-deploy: schema validation skipped (npm could not install kubernetes-models)"
    exit 0
  fi
fi
cat >"$KM_DIR/validate.mjs" <<'EOF'
// Validates each object with the kubernetes-models class of its kind.
import { readFileSync } from "node:fs";
const groups = { "v1": "kubernetes-models/v1", "apps/v1": "kubernetes-models/apps/v1" };
const items = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const { file, object } of items) {
  const mod = await import(groups[object.apiVersion]);
  const where = `${file}: ${object.kind}/${object.metadata.name}`;
  try {
    new mod[object.kind](object).validate();
  } catch (e) {
    failed++;
    console.error(`check-deploy: ${where}: ${e.message}`);
  }
}
if (failed) process.exit(1);
console.log(`check-deploy: ${items.length} Kubernetes objects valid against the API schema (kubernetes-models)`);
EOF
NODE_PATH="$KM_DIR/node_modules" node "$KM_DIR/validate.mjs" "$OBJECTS"
