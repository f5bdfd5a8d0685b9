"""Float64 reference trajectories for the optimizers that the shared reference
file (../shared/reference/optimizers.json) does not cover.

Writes test/fixtures/optimizers-lamb-lars.json in the shared file's format:
each case starts from `params` and applies `grads[k]` with learning rate
`lr[k]` at step k; `expected[k]` holds every parameter after step k. Tensors are
flat row-major lists; `shapes` gives their shapes. `npm run check:optimizers --
test/fixtures/optimizers-lamb-lars.json` compares the TypeScript optimizers
with it.

Run it with Debian's interpreter (numpy and torch 1.13):

    /usr/bin/python3 bench/reference/lamb_lars_reference.py            # writes the fixture
    /usr/bin/python3 bench/reference/lamb_lars_reference.py --check    # compares with the file on disk

Where each case comes from
--------------------------
* SGD (weight decay, Nesterov): torch.optim.SGD itself, on float64 tensors.
* NovoGrad (amsgrad, weight decay): torch_optimizer is not installed here, so
  `NovoGrad` below transcribes torch_optimizer/novograd.py
  (jettify/pytorch-optimizer) step by step, with the same in-place torch ops in
  float64. As a self-check, when ../shared/reference/optimizers.json exists
  beside the checkout, the script replays that file's NovoGrad and SGD cases
  and fails unless it reproduces them to 1e-12; without it, it says so and
  goes on (the shared file is not needed to write or --check the fixture).
* LAMB and LARS: numpy float64, written from the papers (below), not from
  the TypeScript code.

LAMB (You et al. 2019, arXiv:1904.00962, Algorithm 2), per parameter tensor,
t = 1, 2, ...; m, v start at zeros; phi = identity (no clipping):
    m = beta1 m + (1 - beta1) g
    v = beta2 v + (1 - beta2) g^2
    r = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
    u = r + weight_decay p
    trust = ||p|| / ||u||, or 1 when ||p|| == 0 or ||u|| == 0
    p = p - lr trust u

LARS (You, Gitman, Ginsburg 2017, arXiv:1708.03888, Algorithm 1), per
parameter tensor; v starts at zeros; eta is the trust coefficient:
    local = eta ||p|| / (||g|| + weight_decay ||p||), or 1 when ||p|| == 0 or ||g|| == 0
    v = momentum v + lr local (g + weight_decay p)
    p = p - v

The data exercise the edge cases: the second tensor (a bias) starts at zero
(trust ratio 1 on the first step), the last tensor's gradient is zero at step 0
(NovoGrad's "v == 0" branch, LAMB's zero update) and the third tensor's
gradient is zero at step 4 (LARS's ||g|| == 0 fallback).
"""

import math
import os
import sys

import numpy as np
import torch

from fixture_file import replay_shared, write_or_check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'optimizers-lamb-lars.json')
SHARED = os.path.join(ROOT, '..', 'shared', 'reference', 'optimizers.json')

SHAPES = [[2, 3, 2], [4], [3, 3], [1]]
STEPS = 8


def make_data():
    rng = np.random.default_rng(20190401)
    params = [rng.normal(0.0, 1.0, size=int(np.prod(s))) for s in SHAPES]
    params[1][:] = 0.0
    grads = []
    for k in range(STEPS):
        scale = 0.1 if k % 2 == 0 else 1.0
        step = [rng.normal(0.0, scale, size=int(np.prod(s))) for s in SHAPES]
        if k == 0:
            step[3][:] = 0.0
        if k == 4:
            step[2][:] = 0.0
        grads.append(step)
    return params, grads


def norm(x):
    return math.sqrt(float(np.sum(x * x)))


def run_lamb(params, grads, lrs, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.0):
    ps = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    out = []
    for t, (g_step, lr) in enumerate(zip(grads, lrs), start=1):
        for i, g in enumerate(g_step):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            r = (m[i] / (1 - beta1 ** t)) / (np.sqrt(v[i] / (1 - beta2 ** t)) + eps)
            u = r + weight_decay * ps[i]
            wn, un = norm(ps[i]), norm(u)
            trust = wn / un if wn > 0 and un > 0 else 1.0
            ps[i] = ps[i] - lr * trust * u
        out.append([p.copy() for p in ps])
    return out


def run_lars(params, grads, lrs, momentum=0.9, weight_decay=0.0, eta=0.001):
    ps = [p.copy() for p in params]
    vel = [np.zeros_like(p) for p in ps]
    out = []
    for g_step, lr in zip(grads, lrs):
        for i, g in enumerate(g_step):
            wn, gn = norm(ps[i]), norm(g)
            local = eta * wn / (gn + weight_decay * wn) if wn > 0 and gn > 0 else 1.0
            vel[i] = momentum * vel[i] + lr * local * (g + weight_decay * ps[i])
            ps[i] = ps[i] - vel[i]
        out.append([p.copy() for p in ps])
    return out


class NovoGrad(torch.optim.Optimizer):
    """torch_optimizer.NovoGrad's step, transcribed op for op (validation omitted)."""

    def __init__(self, params, lr=1e-3, betas=(0.95, 0), eps=1e-8, weight_decay=0, grad_averaging=False, amsgrad=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, grad_averaging=grad_averaging, amsgrad=amsgrad)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                grad = p.grad.data
                amsgrad = group['amsgrad']
                state = self.state[p]
                if len(state) == 0:
                    state['step'] = 0
                    state['exp_avg'] = torch.zeros_like(p.data)
                    state['exp_avg_sq'] = torch.zeros([], dtype=p.dtype)
                    if amsgrad:
                        state['max_exp_avg_sq'] = torch.zeros([], dtype=p.dtype)
                exp_avg, exp_avg_sq = state['exp_avg'], state['exp_avg_sq']
                if amsgrad:
                    max_exp_avg_sq = state['max_exp_avg_sq']
                beta1, beta2 = group['betas']
                state['step'] += 1
                norm_sq = torch.sum(torch.pow(grad, 2))
                if exp_avg_sq == 0:
                    exp_avg_sq.copy_(norm_sq)
                else:
                    exp_avg_sq.mul_(beta2).add_(norm_sq, alpha=1 - beta2)
                if amsgrad:
                    torch.max(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
                    denom = max_exp_avg_sq.sqrt().add_(group['eps'])
                else:
                    denom = exp_avg_sq.sqrt().add_(group['eps'])
                grad.div_(denom)
                if group['weight_decay'] != 0:
                    grad.add_(p.data, alpha=group['weight_decay'])
                if group['grad_averaging']:
                    grad.mul_(1 - beta1)
                exp_avg.mul_(beta1).add_(grad)
                p.data.add_(exp_avg, alpha=-group['lr'])


def run_torch(make_optimizer, shapes, params, grads, lrs):
    tensors = [torch.nn.Parameter(torch.tensor(p, dtype=torch.float64).reshape(s)) for p, s in zip(params, shapes)]
    opt = make_optimizer(tensors, lrs[0])
    out = []
    for g_step, lr in zip(grads, lrs):
        for group in opt.param_groups:
            group['lr'] = lr
        for t, g in zip(tensors, g_step):
            t.grad = torch.tensor(np.asarray(g), dtype=torch.float64).reshape(t.shape).clone()
        opt.step()
        out.append([t.detach().numpy().reshape(-1).copy() for t in tensors])
    return out


def sgd(momentum, weight_decay=0.0, nesterov=False):
    return lambda ts, lr: torch.optim.SGD(ts, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def novograd(beta1=0.95, beta2=0.0, eps=1e-8, weight_decay=0.0, grad_averaging=False, amsgrad=False):
    return lambda ts, lr: NovoGrad(ts, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
                                   grad_averaging=grad_averaging, amsgrad=amsgrad)


def self_check():
    """Replays the shared file's sgd and novograd cases with this script's torch paths."""
    def run_case(case, shapes, params, grads):
        h = case['hyper']
        if case['optimizer'] == 'sgd':
            make = sgd(h.get('momentum', 0.0), h.get('weightDecay', 0.0), h.get('nesterov', False))
        elif case['optimizer'] == 'novograd':
            make = novograd(h['beta1'], h['beta2'], h['eps'], h['weightDecay'], h['gradAveraging'], h['amsgrad'])
        else:
            return None
        return run_torch(make, shapes, params, grads, case['lr'])

    replay_shared(SHARED, run_case)


def build():
    params, grads = make_data()
    warm = [0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01, 0.01, 0.01]
    const = [0.05] * STEPS
    lars_lr = [0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0, 2.0]
    cases = []

    def add(name, optimizer, hyper, lr, expected):
        cases.append({'name': name, 'optimizer': optimizer, 'hyper': hyper, 'lr': lr,
                      'expected': [[t.tolist() for t in step] for step in expected]})

    add('lamb defaults (betas 0.9,0.999; eps 1e-6), warmup', 'lamb',
        {'beta1': 0.9, 'beta2': 0.999, 'eps': 1e-6, 'weightDecay': 0}, warm, run_lamb(params, grads, warm))
    add('lamb weight decay 0.01, beta2 0.99, eps 1e-8', 'lamb',
        {'beta1': 0.9, 'beta2': 0.99, 'eps': 1e-8, 'weightDecay': 0.01}, const,
        run_lamb(params, grads, const, beta2=0.99, eps=1e-8, weight_decay=0.01))
    add('lars defaults (momentum 0.9, eta 0.001), warmup', 'lars',
        {'momentum': 0.9, 'weightDecay': 0, 'trustCoefficient': 0.001}, lars_lr, run_lars(params, grads, lars_lr))
    add('lars weight decay 5e-4, momentum 0.8, eta 0.02', 'lars',
        {'momentum': 0.8, 'weightDecay': 5e-4, 'trustCoefficient': 0.02}, lars_lr,
        run_lars(params, grads, lars_lr, momentum=0.8, weight_decay=5e-4, eta=0.02))
    add('sgd momentum 0.9, weight decay 0.01, nesterov (torch.optim.SGD)', 'sgd',
        {'momentum': 0.9, 'weightDecay': 0.01, 'nesterov': True}, const,
        run_torch(sgd(0.9, 0.01, True), SHAPES, params, grads, const))
    add('sgd weight decay 0.05, no momentum (torch.optim.SGD)', 'sgd',
        {'momentum': 0, 'weightDecay': 0.05, 'nesterov': False}, const,
        run_torch(sgd(0.0, 0.05), SHAPES, params, grads, const))
    add('novograd amsgrad, beta2 0.5, weight decay 0.001 (torch_optimizer transcribed)', 'novograd',
        {'beta1': 0.95, 'beta2': 0.5, 'eps': 1e-8, 'weightDecay': 0.001, 'gradAveraging': True, 'amsgrad': True}, const,
        run_torch(novograd(0.95, 0.5, 1e-8, 0.001, True, True), SHAPES, params, grads, const))
    add('novograd course (betas 0.95,0; grad_averaging), zero first gradient', 'novograd',
        {'beta1': 0.95, 'beta2': 0.0, 'eps': 1e-8, 'weightDecay': 0, 'gradAveraging': True, 'amsgrad': False}, const,
        run_torch(novograd(0.95, 0.0, 1e-8, 0.0, True, False), SHAPES, params, grads, const))

    about = ('Each case starts from `params` and applies `grads[k]` with learning rate `lr[k]` at step k; '
             '`expected[k]` holds every parameter after step k. Every tensor is a flat row-major list; '
             '`shapes` gives each one\'s shape. Float64, written by bench/reference/lamb_lars_reference.py '
             '(LAMB/LARS from the papers in numpy, SGD by torch.optim.SGD, NovoGrad by a transcription of '
             'torch_optimizer/novograd.py); that script states the exact update rules.')
    return {'about': about, 'shapes': SHAPES, 'params': [p.tolist() for p in params],
            'grads': [[g.tolist() for g in step] for step in grads], 'cases': cases}


def main():
    torch.set_default_dtype(torch.float64)
    write_or_check(OUT, __doc__.split('\n')[0], [self_check], build, STEPS)


if __name__ == '__main__':
    main()
