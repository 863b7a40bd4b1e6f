"""Regenerate wrong/*.diff and index.yaml from the reference solution: run it after changing the
solution (python wrong/regenerate.py). Each wrong fix is one plausible mistake, as a diff in
workspace paths that `git apply` takes."""
import os, re, shutil, subprocess, tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]
OUT = SRC / 'wrong'
os.chdir(tempfile.mkdtemp(prefix='wrongs-'))
def fresh():
    for d in ('a', 'b'):
        shutil.rmtree(d, ignore_errors=True)
        Path(d).mkdir()
        shutil.copytree(SRC / 'solution' / 'k8s', Path(d) / 'k8s')
        shutil.copytree(SRC / 'starter' / 'app', Path(d) / 'app')

def edit(path, old, new):
    p = Path('b') / path
    s = p.read_text(); assert old in s, (path, old); p.write_text(s.replace(old, new))

WRONGS = {
  'probes_deleted': ('deletes both probes so the pods go Ready at once', ['test_unready_while_the_model_cannot_load'],
     lambda: edit('k8s/30-deployment.yaml', re.search(r'          readinessProbe:.*?failureThreshold: 3\n', (SRC/'solution/k8s/30-deployment.yaml').read_text(), re.S).group(0), '')),
  'readiness_on_livez': ('readiness probe on /livez: Ready as soon as the process is up', ['test_unready_while_the_model_cannot_load'],
     lambda: edit('k8s/30-deployment.yaml', 'path: /readyz', 'path: /livez')),
  'huge_memory_limit': ('"make the limit huge": 16Gi', ['test_resources_are_sane'],
     lambda: edit('k8s/30-deployment.yaml', 'memory: 1Gi', 'memory: 16Gi')),
  'no_requests': ('limits only, no requests: the scheduler cannot place it sensibly', ['test_resources_are_sane'],
     lambda: edit('k8s/30-deployment.yaml', '            requests:\n              cpu: 100m\n              memory: 384Mi\n', '')),
  'latest_tag_kept': ('builds and runs churn-api:latest (works, but floats)', ['test_image_is_pinned'],
     lambda: (edit('k8s/30-deployment.yaml', 'image: churn-api:1.0.0', 'image: churn-api:latest'), edit('app/VERSION', '1.0.0', 'latest'))),
  'readiness_late_on_livez': ('readiness on /livez after a 50 s delay: the model has always loaded by then, unless it cannot load',
     ['test_unready_while_the_model_cannot_load'],
     lambda: edit('k8s/30-deployment.yaml', '              path: /readyz\n              port: http\n            periodSeconds: 2\n',
                  '              path: /livez\n              port: http\n            initialDelaySeconds: 50\n            periodSeconds: 2\n')),
  'readiness_reads_its_label': ('readiness says yes to the Deployment named churn-api only (its label, through the downward API)',
     ['test_unready_while_the_model_cannot_load'],
     lambda: edit('k8s/30-deployment.yaml', '          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: http\n',
                  '          readinessProbe:\n            exec:\n              command: ["sh", "-c", "test \\"$APP_NAME\\" = churn-api"]\n')
             or edit('k8s/30-deployment.yaml', '            - name: PREDICT_TOKEN\n',
                     '            - name: APP_NAME\n              valueFrom:\n                fieldRef:\n                  fieldPath: metadata.labels[\'app.kubernetes.io/name\']\n            - name: PREDICT_TOKEN\n')),
  'liveness_on_readyz': ('liveness on /readyz: a replica waiting for the registry is restarted in a loop',
     ['test_a_registry_outage_restarts_nothing'],
     lambda: edit('k8s/30-deployment.yaml', '              path: /livez\n', '              path: /readyz\n'),
     ['test_unready_while_the_model_cannot_load', 'test_no_prediction_without_the_model']),
  'canned_predictions': ('/predict answers zeros until the model is loaded instead of refusing',
     ['test_no_prediction_without_the_model'],
     lambda: edit('app/service.py', '            raise ServiceUnavailable("the model is not loaded yet")\n',
                  '            return {"predictions": [0] * len(rows), "probabilities": [0.0] * len(rows), "model_version": ""}\n'),
     ['test_unready_while_the_model_cannot_load', 'test_a_registry_outage_restarts_nothing']),
  'token_requests': ('requests of 1m CPU and 1Mi memory: set, but they reserve nothing', ['test_resources_are_sane'],
     lambda: edit('k8s/30-deployment.yaml', '              cpu: 100m\n              memory: 384Mi\n', '              cpu: 1m\n              memory: 1Mi\n')),
  'limit_at_the_idle_footprint': ('request = limit = 300Mi, what an idle replica uses: a large request gets its worker killed',
     ['test_a_large_batch_is_answered'],
     lambda: edit('k8s/30-deployment.yaml', '              memory: 384Mi\n            limits:\n              memory: 1Gi\n',
                  '              memory: 300Mi\n            limits:\n              memory: 300Mi\n'),
     ['test_resources_are_sane']),
  'no_pre_stop': ('no preStop hook: a replica stops listening while the Service still sends it requests',
     ['test_no_errors_during_a_rolling_restart'],
     lambda: edit('k8s/30-deployment.yaml', '          lifecycle:\n            preStop:\n              exec:\n                command: ["sleep", "5"]\n', '')),
  'recreate_single_replica': ('one replica, Recreate strategy: every deploy is an outage', ['test_no_errors_during_a_rolling_restart'],
     lambda: edit('k8s/30-deployment.yaml', '  replicas: 2\n  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxUnavailable: 0\n      maxSurge: 1\n', '  replicas: 1\n  strategy:\n    type: Recreate\n')),
}
# Honest alternatives (fair/): other probes, sizes and shutdown timing that serve as well; they must score 100 %.
def other_sound_choices():
    edit('k8s/30-deployment.yaml', '  replicas: 2\n', '  replicas: 3\n')
    edit('k8s/30-deployment.yaml', 'terminationGracePeriodSeconds: 30', 'terminationGracePeriodSeconds: 45')
    edit('k8s/30-deployment.yaml', '          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: http\n            periodSeconds: 2\n',
         '          readinessProbe:\n            exec:\n              command: ["python", "-c", "import urllib.request; urllib.request.urlopen(\'http://127.0.0.1:3000/readyz\', timeout=2)"]\n            periodSeconds: 3\n            timeoutSeconds: 3\n')
    edit('k8s/30-deployment.yaml', '          livenessProbe:\n            httpGet:\n              path: /livez\n              port: http\n            initialDelaySeconds: 10\n',
         '          startupProbe:\n            httpGet:\n              path: /livez\n              port: http\n            periodSeconds: 2\n            failureThreshold: 30\n          livenessProbe:\n            tcpSocket:\n              port: http\n')
    edit('k8s/30-deployment.yaml', 'command: ["sleep", "5"]', 'command: ["sleep", "10"]')
    edit('k8s/30-deployment.yaml', '              cpu: 100m\n              memory: 384Mi\n            limits:\n              memory: 1Gi\n',
         '              cpu: 150m\n              memory: 512Mi\n            limits:\n              cpu: "1"\n              memory: 1536Mi\n')

FAIR = {
  'other_sound_choices': ('3 replicas; readiness by an exec probe that asks /readyz; a startup probe on /livez and a TCP '
                          'liveness; a 10 s preStop in a 45 s grace period; larger requests and a CPU limit', other_sound_choices),
}

def write_diff(folder, name):
    diff = subprocess.run(['diff', '-ruN', 'a', 'b'], capture_output=True, text=True).stdout
    diff = re.sub(r'^(---|\+\+\+) ([ab])/(\S+).*$', lambda m: f'{m.group(1)} {m.group(2)}/{m.group(3)}', diff, flags=re.M)
    diff = re.sub(r'^diff -ruN .*\n', '', diff, flags=re.M)
    (folder / f'{name}.diff').write_text(diff)

FAIR_OUT = SRC / 'fair'
FAIR_OUT.mkdir(exist_ok=True)
fair_index = []
for name, (desc, change) in FAIR.items():
    fresh(); change(); write_diff(FAIR_OUT, name)
    fair_index.append(f'{name}:\n  description: {desc!r}\n')
(FAIR_OUT / 'index.yaml').write_text('# Honest alternatives to the reference solution, as diffs (workspace paths): each must score 100 %,\n'
                                     '# graded on every check (regenerate with wrong/regenerate.py).\n' + ''.join(fair_index))

OUT.mkdir(exist_ok=True)
index = []
for name, (desc, must, change, *passes) in WRONGS.items():
    fresh(); change(); write_diff(OUT, name)
    index.append(f'{name}:\n  description: {desc!r}\n  must_fail: [{", ".join(must)}]\n'
                 + (f'  must_pass: [{", ".join(passes[0])}]\n' if passes else ''))
(OUT / 'index.yaml').write_text('# Plausible wrong fixes, as diffs against the reference solution (workspace paths).\n' + ''.join(index))
print('\n'.join(sorted(p.name for p in OUT.iterdir())))
