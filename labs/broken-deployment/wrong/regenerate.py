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
  'recreate_single_replica': ('one replica, Recreate strategy: every deploy is an outage', ['test_no_errors_during_a_rolling_restart'],
     lambda: edit('k8s/30-deployment.yaml', '  replicas: 2\n  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxUnavailable: 0\n      maxSurge: 1\n', '  replicas: 1\n  strategy:\n    type: Recreate\n')),
}
OUT.mkdir(exist_ok=True)
index = []
for name, (desc, must, change) in WRONGS.items():
    fresh(); change()
    diff = subprocess.run(['diff', '-ruN', 'a', 'b'], capture_output=True, text=True).stdout
    diff = re.sub(r'^(---|\+\+\+) ([ab])/(\S+).*$', lambda m: f'{m.group(1)} {m.group(2)}/{m.group(3)}', diff, flags=re.M)
    diff = re.sub(r'^diff -ruN .*\n', '', diff, flags=re.M)
    (OUT / f'{name}.diff').write_text(diff)
    index.append(f'{name}:\n  description: {desc!r}\n  must_fail: [{", ".join(must)}]\n')
(OUT / 'index.yaml').write_text('# Plausible wrong fixes, as diffs against the reference solution (workspace paths).\n' + ''.join(index))
print('\n'.join(sorted(p.name for p in OUT.iterdir())))
