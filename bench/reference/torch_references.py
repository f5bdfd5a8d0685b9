"""Float64 reference trajectories for SGD and NovoGrad, computed by PyTorch and
torch_optimizer themselves.

Writes test/fixtures/optimizers-torch.json, the project's own copy of the kinds
of cases that ../shared/reference/optimizers.json holds, in that file's format:
each case starts from `params` and applies `grads[k]` with learning rate
`lr[k]` at step k; `expected[k]` holds every parameter after step k. Tensors are
flat row-major lists; `shapes` gives their shapes. `npm run check:optimizers --
test/fixtures/optimizers-torch.json` compares the TypeScript optimizers with it,
and test/optimizers.test.ts and test/schedule.test.ts read it.

Run it with the checkout's virtual environment (.venv, made by ./setup.sh from
requirements.txt: torch-optimizer 0.3.0 and pytorch-ranger, plus Debian's
torch 1.13 through --system-site-packages):

    .venv/bin/python bench/reference/torch_references.py            # writes the fixture
    .venv/bin/python bench/reference/torch_references.py --check    # compares with the file on disk

Every tensor is torch.float64 and the default dtype is set to float64 too
(torch_optimizer.NovoGrad creates its scalar second moment with the default
dtype). The output depends only on the seed below: two runs give the same bytes.

Where each case comes from
--------------------------
* 'sgd plain', 'sgd momentum 0.9': torch.optim.SGD(lr=0.05, momentum=0 / 0.9).
* 'sgd momentum 0.9, LinearLR(1/4, 5)': torch.optim.SGD(lr=0.08, momentum=0.9)
  driven by torch.optim.lr_scheduler.LinearLR(start_factor=1/4,
  total_iters=5), stepped once after every optimizer step. The case's `lr`
  list is optimizer.param_groups[0]['lr'] read before each step. The scheduler
  is stepped with its step count (`scheduler.step(k)`). That makes LinearLR use
  its closed form (`_get_closed_form_lr`, base * (start + (1 - start) *
  min(k, 5) / 5)), and that closed form is what lib/train/schedule.ts
  implements. A plain `scheduler.step()`, as the course calls it, multiplies
  the previous rate by a ratio each time. On torch 1.13 that gives the same
  rates to within one unit in the last place (0.06799999999999999 instead of
  0.068, for example). The script checks that both agree to 1e-15 relative
  and prints the largest difference.
* 'novograd course ...': torch_optimizer.NovoGrad(lr=0.05, betas=(0.95, 0),
  grad_averaging=True), the course's call (weight decay 0, eps 1e-8).
* 'novograd beta2 0.98': torch_optimizer.NovoGrad(lr=0.05, betas=(0.95, 0.98)),
  grad_averaging off, as in the shared file's case of that name.
* 'novograd amsgrad, beta2 0.9, weight decay 0.01, grad_averaging':
  torch_optimizer.NovoGrad(lr=0.05, betas=(0.95, 0.9), weight_decay=0.01,
  grad_averaging=True, amsgrad=True).

The data (numpy default_rng(SEED)) have the shared file's tensor shapes: a 3x3
conv kernel with 1 input and 4 output channels, a bias of 4 that starts at
zero, a 5x2 dense matrix and a scalar. Gradients alternate between scale 0.1
and 1 (so NovoGrad's second moment falls as well as rises, which is what
amsgrad's maximum is for). The scalar's gradient is zero at step 0, so its
second moment is still 0 at step 1 and NovoGrad takes its "first step" branch
(copy the squared norm) there. Every gradient is zero at step 5, so the course
setting (beta2 0) has a zero second moment again at step 6 and divides by eps
alone at step 5.

Self-check: when ../shared/reference/optimizers.json exists beside the
checkout, the script first replays its sgd and novograd cases with the same
library calls and fails unless it reproduces every parameter to 1e-12. It also
checks that the scheduler gives that file's LinearLR rates exactly. When the
file is absent, it says so and goes on.
"""

import os
import sys
import warnings

import numpy as np
import torch
import torch_optimizer

from fixture_file import replay_shared, write_or_check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'optimizers-torch.json')
SHARED = os.path.join(ROOT, '..', 'shared', 'reference', 'optimizers.json')

SEED = 20240605
SHAPES = [[3, 3, 1, 4], [4], [5, 2], [1]]
STEPS = 10
LR = 0.05
WARMUP = {'base': 0.08, 'start_factor': 1 / 4, 'total_iters': 5}


def make_data():
    rng = np.random.default_rng(SEED)
    params = [rng.normal(0.0, 1.0, size=int(np.prod(s))) for s in SHAPES]
    params[1][:] = 0.0
    grads = []
    for k in range(STEPS):
        scale = 0.1 if k % 2 == 0 else 1.0
        step = [rng.normal(0.0, scale, size=int(np.prod(s))) for s in SHAPES]
        if k == 0:
            step[3][:] = 0.0
        if k == 5:
            for g in step:
                g[:] = 0.0
        grads.append(step)
    return params, grads


def sgd(momentum, weight_decay=0.0, nesterov=False):
    return lambda ts, lr: torch.optim.SGD(ts, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def novograd(beta1, beta2, eps, weight_decay, grad_averaging, amsgrad):
    return lambda ts, lr: torch_optimizer.NovoGrad(ts, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
                                                   grad_averaging=grad_averaging, amsgrad=amsgrad)


def maker(optimizer, hyper):
    """The library call for a case's optimizer and hyper object (the keys lib/optim/reference.ts reads)."""
    if optimizer == 'sgd':
        return sgd(hyper.get('momentum', 0.0), hyper.get('weightDecay', 0.0), hyper.get('nesterov', False))
    if optimizer == 'novograd':
        return novograd(hyper['beta1'], hyper['beta2'], hyper['eps'], hyper['weightDecay'], hyper['gradAveraging'],
                        hyper['amsgrad'])
    return None


def tensors_from(shapes, params):
    return [torch.nn.Parameter(torch.tensor(p, dtype=torch.float64).reshape(s)) for p, s in zip(params, shapes)]


def set_grads(tensors, g_step):
    for t, g in zip(tensors, g_step):
        t.grad = torch.tensor(np.asarray(g), dtype=torch.float64).reshape(t.shape).clone()


def snapshot(tensors):
    return [t.detach().reshape(-1).tolist() for t in tensors]


def run_torch(make_optimizer, shapes, params, grads, lrs):
    """Steps a fresh optimizer with lrs[k] and grads[k]; returns every parameter after every step."""
    tensors = tensors_from(shapes, params)
    opt = make_optimizer(tensors, lrs[0])
    out = []
    for g_step, lr in zip(grads, lrs):
        for group in opt.param_groups:
            group['lr'] = lr
        set_grads(tensors, g_step)
        opt.step()
        out.append(snapshot(tensors))
    return out


def run_linear_lr(make_optimizer, shapes, params, grads, base, start_factor, total_iters, closed_form=True):
    """Steps an optimizer whose rate LinearLR sets; returns (the rate before each step, the parameters after it)."""
    tensors = tensors_from(shapes, params)
    opt = make_optimizer(tensors, base)
    scheduler = torch.optim.lr_scheduler.LinearLR(opt, start_factor=start_factor, total_iters=total_iters)
    lrs, out = [], []
    for k, g_step in enumerate(grads):
        lrs.append(opt.param_groups[0]['lr'])
        set_grads(tensors, g_step)
        opt.step()
        out.append(snapshot(tensors))
        if closed_form:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', UserWarning)  # "passing an epoch to step() is deprecated"
                scheduler.step(k + 1)
        else:
            scheduler.step()
    return lrs, out


def linear_lr_rates(steps, base, start_factor, total_iters, closed_form=True):
    params = [np.zeros(1)]
    grads = [[np.zeros(1)]] * steps
    return run_linear_lr(sgd(0.0), [[1]], params, grads, base, start_factor, total_iters, closed_form)[0]


def check_chained_rates():
    """The closed form against LinearLR's chained form (plain scheduler.step()), which the course calls."""
    closed = linear_lr_rates(STEPS, WARMUP['base'], WARMUP['start_factor'], WARMUP['total_iters'])
    chained = linear_lr_rates(STEPS, WARMUP['base'], WARMUP['start_factor'], WARMUP['total_iters'], closed_form=False)
    worst = max(abs(a - b) / b for a, b in zip(chained, closed))
    if worst > 1e-15:
        sys.exit(f'LinearLR: scheduler.step() and scheduler.step(k) differ by {worst:g} (relative): {chained} vs {closed}')
    print(f'LinearLR: plain scheduler.step() gives the closed-form rates to {worst:.2g} relative')


def self_check():
    """Replays the shared file's sgd and novograd cases with this script's library calls, and its
    LinearLR case's rates with the closed form."""
    def run_case(case, shapes, params, grads):
        make = maker(case['optimizer'], case['hyper'])
        return None if make is None else run_torch(make, shapes, params, grads, case['lr'])

    for name, case in replay_shared(SHARED, run_case).items():
        if 'LinearLR' in name:
            rates = linear_lr_rates(len(case['lr']), WARMUP['base'], WARMUP['start_factor'], WARMUP['total_iters'])
            if rates != case['lr']:
                sys.exit(f"self-check failed: LinearLR gives {rates}, the shared case '{name}' has {case['lr']}")
            print(f"self-check: LinearLR gives the lr list of '{name}' exactly")


def build():
    params, grads = make_data()
    const = [LR] * STEPS
    cases = []

    def add(name, optimizer, hyper, lr, expected):
        cases.append({'name': name, 'optimizer': optimizer, 'hyper': hyper, 'lr': lr, 'expected': expected})

    def add_constant(name, optimizer, hyper):
        add(name, optimizer, hyper, const, run_torch(maker(optimizer, hyper), SHAPES, params, grads, const))

    add_constant('sgd plain', 'sgd', {'momentum': 0, 'weightDecay': 0})
    add_constant('sgd momentum 0.9', 'sgd', {'momentum': 0.9, 'weightDecay': 0})
    warm_hyper = {'momentum': 0.9, 'weightDecay': 0}
    warm_lr, warm_expected = run_linear_lr(maker('sgd', warm_hyper), SHAPES, params, grads, WARMUP['base'],
                                           WARMUP['start_factor'], WARMUP['total_iters'])
    add('sgd momentum 0.9, LinearLR(1/4, 5)', 'sgd', warm_hyper, warm_lr, warm_expected)
    add_constant('novograd course (betas 0.95,0; grad_averaging)', 'novograd',
                 {'beta1': 0.95, 'beta2': 0.0, 'eps': 1e-8, 'weightDecay': 0, 'gradAveraging': True, 'amsgrad': False})
    add_constant('novograd beta2 0.98', 'novograd',
                 {'beta1': 0.95, 'beta2': 0.98, 'eps': 1e-8, 'weightDecay': 0, 'gradAveraging': False, 'amsgrad': False})
    add_constant('novograd amsgrad, beta2 0.9, weight decay 0.01, grad_averaging', 'novograd',
                 {'beta1': 0.95, 'beta2': 0.9, 'eps': 1e-8, 'weightDecay': 0.01, 'gradAveraging': True, 'amsgrad': True})

    about = ('Each case starts from `params` and applies `grads[k]` with learning rate `lr[k]` at step k; '
             '`expected[k]` holds every parameter after step k. Every tensor is a flat row-major list; '
             '`shapes` gives each one\'s shape. Float64, written by bench/reference/torch_references.py '
             f'with torch.optim.SGD, torch.optim.lr_scheduler.LinearLR and torch_optimizer.NovoGrad '
             f'(torch {torch.__version__.split("+")[0]}, torch-optimizer {torch_optimizer.__version__}); '
             'that script says how each case is made.')
    return {'about': about, 'shapes': SHAPES, 'params': [p.tolist() for p in params],
            'grads': [[g.tolist() for g in step] for step in grads], 'cases': cases}


def main():
    torch.set_default_dtype(torch.float64)
    write_or_check(OUT, __doc__.split('\n')[0], [self_check, check_chained_rates], build, STEPS)


if __name__ == '__main__':
    main()
