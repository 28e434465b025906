"""Reference figures for heft's `train_step` and `tape` benches, measured
with other engines on the same machine, in the same session.

Not part of the build: run it by hand beside the criterion benches, e.g.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch jax numpy
    /tmp/venv/bin/python benches/scripts/reference_engines.py --threads 1
    /tmp/venv/bin/python benches/scripts/reference_engines.py --threads 2

Each engine runs the exact workload of the heft bench:
- train_step: one SGD step (forward, backward, update, lr 0.01) of a
  784-256-128-10 ReLU MLP with softmax cross-entropy, batch 64, f32;
- tape: a chain of 1,000 ops on 1-element tensors (250 rounds of
  mul by the leaf, add a constant, mul by 0.5, tanh), forward plus backward.
`--engine numpy-gemm` (not in the default set) measures numpy's f32 GEMM
at the square sizes and MLP shapes of `gemm-table`.
Prints medians over repeated timed blocks. Thread counts are set through
each library's own knob before it is imported.
"""

import argparse
import os
import statistics
import sys
import time


def median_rate(fn, per_call, blocks=15, min_block_s=0.2):
    """Calls `fn` in timed blocks; returns the median of per_call/seconds."""
    for _ in range(20):
        fn()
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t >= min_block_s:
            break
        n *= 2
    rates = []
    for _ in range(blocks):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        rates.append(n * per_call / (time.perf_counter() - t))
    return statistics.median(rates)


def data(np):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 784), dtype=np.float32)
    y = np.arange(64) % 10
    def he(i, o):
        return (rng.standard_normal((o, i)) * np.sqrt(2.0 / i)).astype(np.float32)
    params = [he(784, 256), np.zeros(256, np.float32),
              he(256, 128), np.zeros(128, np.float32),
              he(128, 10), np.zeros(10, np.float32)]
    return x, y, params


def bench_torch(threads):
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    x, y, params = data(np)
    x = torch.from_numpy(x)
    y = torch.from_numpy(y)
    ps = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
    opt = torch.optim.SGD(ps, lr=0.01)

    def step():
        h = x
        for i in range(3):
            h = torch.nn.functional.linear(h, ps[2 * i], ps[2 * i + 1])
            if i < 2:
                h = torch.relu(h)
        loss = torch.nn.functional.cross_entropy(h, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    out = {"torch eager train_step (steps/s)": median_rate(step, 1)}

    xl = torch.tensor([0.7], requires_grad=True)
    c = torch.tensor([0.1])

    def chain():
        t = xl
        for _ in range(250):
            t = torch.tanh((t * xl + c) * 0.5)
        t.backward()
        xl.grad = None

    out["torch eager tape (us/op)"] = 1e6 / median_rate(chain, 1000)
    return out


def bench_jax(threads):
    os.environ["XLA_FLAGS"] = (
        "--xla_cpu_multi_thread_eigen=%s intra_op_parallelism_threads=%d"
        % ("true" if threads > 1 else "false", threads)
    )
    import numpy as np
    import jax
    import jax.numpy as jnp
    x, y, params = data(np)
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    ps = [jnp.asarray(p) for p in params]

    def loss_fn(ps, x, y):
        h = x
        for i in range(3):
            h = h @ ps[2 * i].T + ps[2 * i + 1]
            if i < 2:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def update(ps, x, y):
        g = jax.grad(loss_fn)(ps, x, y)
        return [p - 0.01 * gp for p, gp in zip(ps, g)]

    state = {"ps": ps}

    def step():
        state["ps"] = update(state["ps"], x, y)
        state["ps"][0].block_until_ready()

    return {"jax jit train_step (steps/s)": median_rate(step, 1)}


def bench_numpy(threads):
    import numpy as np
    x, y, params = data(np)
    W1, b1, W2, b2, W3, b3 = params
    onehot = np.eye(10, dtype=np.float32)[y]

    def step():
        nonlocal W1, b1, W2, b2, W3, b3
        h1 = x @ W1.T + b1
        a1 = np.maximum(h1, 0)
        h2 = a1 @ W2.T + b2
        a2 = np.maximum(h2, 0)
        z = a2 @ W3.T + b3
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        p = e / e.sum(axis=1, keepdims=True)
        dz = (p - onehot) / 64.0
        dW3 = dz.T @ a2
        db3 = dz.sum(0)
        da2 = dz @ W3
        da2 *= h2 > 0
        dW2 = da2.T @ a1
        db2 = da2.sum(0)
        da1 = da2 @ W2
        da1 *= h1 > 0
        dW1 = da1.T @ x
        db1 = da1.sum(0)
        W1 -= 0.01 * dW1; b1 -= 0.01 * db1
        W2 -= 0.01 * dW2; b2 -= 0.01 * db2
        W3 -= 0.01 * dW3; b3 -= 0.01 * db3

    return {"numpy by hand train_step (steps/s)": median_rate(step, 1)}


def bench_numpy_gemm(threads):
    """numpy (OpenBLAS) f32 GEMM at gemm-table's square sizes and MLP shapes."""
    import numpy as np
    rng = np.random.default_rng(0)
    out = {}
    for (m, n, k) in [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024),
                      (64, 256, 784), (64, 784, 256), (784, 256, 64)]:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        rate = median_rate(lambda: a @ b, 2.0 * m * n * k, blocks=9)
        out["numpy gemm %dx%dx%d NN (GFLOP/s)" % (m, n, k)] = rate / 1e9
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--engine", choices=["torch", "jax", "numpy", "numpy-gemm"], action="append")
    a = ap.parse_args()
    engines = a.engine or ["torch", "jax", "numpy"]
    if len(engines) > 1:
        # One process per engine, so each library's thread setting is its own.
        import subprocess
        for e in engines:
            subprocess.run([sys.executable, __file__, "--threads", str(a.threads), "--engine", e], check=True)
        return
    e = engines[0]
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    os.environ["MKL_NUM_THREADS"] = str(a.threads)
    res = {"torch": bench_torch, "jax": bench_jax, "numpy": bench_numpy,
           "numpy-gemm": bench_numpy_gemm}[e](a.threads)
    for k, v in res.items():
        print("threads=%d  %-40s %10.2f" % (a.threads, k, v), flush=True)


if __name__ == "__main__":
    main()
